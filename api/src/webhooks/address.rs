//! The server-side request forgery rule: a webhook may not make the service reach into its own
//! network (loopback, private, link-local and other special addresses), neither by its URL nor
//! by where that name resolves nor by a redirect, unless `CNSCD_WEBHOOK_ALLOW_PRIVATE` says the
//! province's internal network is the point.
use crate::error::{Error, Result};
use std::net::{IpAddr, SocketAddr};

/// Whether an address is one a webhook may not reach by default.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // Carrier-grade NAT (100.64.0.0/10) and "this network" (0.0.0.0/8).
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                // Benchmarking (198.18.0.0/15) and reserved (240.0.0.0/4).
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Checks a webhook's URL as given: http or https, a host, no credentials, and (unless private
/// addresses are allowed) a host that is not, and does not resolve to, a private address.
pub async fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url> {
    const FIELD: &str = "input.url";
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| Error::invalid(FIELD, format!("`{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::invalid(
            FIELD,
            "a webhook URL starts with https:// or http://",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::invalid(
            FIELD,
            "a webhook URL carries no user or password: the signature authenticates the service",
        ));
    }
    let Some(host) = parsed.host_str().map(str::to_owned) else {
        return Err(Error::invalid(FIELD, "a webhook URL names a host"));
    };
    if url.len() > 2_000 {
        return Err(Error::invalid(
            FIELD,
            "a webhook URL is at most 2,000 characters",
        ));
    }
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Error::invalid(FIELD, format!("`{host}` does not resolve: {e}")))?
            .collect(),
    };
    if let Some(private) = addresses.iter().find(|a| is_private(a.ip())) {
        return Err(Error::invalid(
            FIELD,
            format!(
                "`{host}` is a private address ({}): webhooks reach public addresses only \
                 unless CNSCD_WEBHOOK_ALLOW_PRIVATE=true",
                private.ip()
            ),
        ));
    }
    Ok(parsed)
}

/// Resolves names for deliveries, leaving out private addresses unless they are allowed: a name
/// that resolves to nothing else fails, whether the webhook's own URL or a redirect's.
#[derive(Clone, Copy)]
pub struct Resolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{} resolves to no public address", name.as_str()).into());
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Follows at most five redirects, and none to a private address written as such (a name is
/// checked by the [`Resolver`]).
pub fn redirects(allow_private: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("more than 5 redirects");
        }
        let private = attempt
            .url()
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<IpAddr>().ok())
            .is_some_and(is_private);
        if private && !allow_private {
            return attempt.error("redirected to a private address");
        }
        attempt.follow()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses_are_private() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                is_private(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
                "{ip}"
            );
        }
        for ip in ["8.8.8.8", "203.113.0.1", "2001:4860:4860::8888"] {
            assert!(
                !is_private(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
                "{ip}"
            );
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        for bad in [
            "not a url",
            "ftp://example.org/x",
            "https://user:pw@example.org/x",
            "http://127.0.0.1:9000/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/hook",
        ] {
            assert!(check_url(bad, false).await.is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).await.is_ok());
        assert!(check_url("https://203.113.0.1/hook", false).await.is_ok());
    }
}
