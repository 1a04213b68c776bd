//! The identity provider's keys from its JWKS endpoint (`CNSCD_JWKS_URL`).
//!
//! Fetched at start, then refreshed in the background when the document's `Cache-Control:
//! max-age` runs out (never on the request path). A token whose `kid` is not among the keys
//! triggers one refetch, at most once per [`DEFAULT_REFETCH_INTERVAL`], so a key the provider
//! has just rotated in is accepted at once while a flood of made-up `kid`s costs the provider
//! one request a minute. A failed fetch keeps the keys already held: the service goes on
//! verifying tokens while the provider is down.
use super::keys::{self, Key};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// Shortest time between two refetches caused by unknown `kid`s, and between two background
/// refreshes.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long a document without `Cache-Control: max-age` is kept before it is refreshed.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Longest a document is kept, whatever its `max-age` says.
pub const LONGEST_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Largest JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// What a refetch for an unknown `kid` did.
pub enum Refetch {
    Fetched,
    /// The last one was less than the refetch interval ago.
    TooSoon,
    Failed(String),
}

/// The provider's current keys and how to refresh them.
pub struct RemoteKeys {
    url: reqwest::Url,
    /// The URL as shown in logs and messages (without a password, if it had one).
    shown: String,
    client: reqwest::Client,
    interval: Duration,
    keys: RwLock<Arc<Vec<Key>>>,
    /// Serialises fetches: a request that finds a refetch in flight waits for it.
    fetching: tokio::sync::Mutex<()>,
    /// When an unknown `kid` last caused a refetch.
    last_unknown_kid_refetch: Mutex<Option<Instant>>,
}

impl RemoteKeys {
    /// Fetches the keys (a failure is logged, not fatal: tokens are refused until a fetch
    /// succeeds) and starts refreshing them in the background.
    pub async fn start(url: &str, interval: Duration) -> anyhow::Result<Arc<Self>> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("CNSCD_JWKS_URL `{url}` is not a URL: {e}"))?;
        anyhow::ensure!(
            matches!(url.scheme(), "https" | "http"),
            "CNSCD_JWKS_URL must be an https:// (or http://) URL, not {}",
            url.scheme()
        );
        let mut shown = url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("cnscd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let this = Arc::new(Self {
            url,
            shown: shown.to_string(),
            client,
            interval,
            keys: RwLock::new(Arc::new(Vec::new())),
            fetching: tokio::sync::Mutex::new(()),
            last_unknown_kid_refetch: Mutex::new(None),
        });
        let next = match this.refresh().await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "the identity provider's keys could not be fetched at start; its tokens are \
                     refused until a fetch succeeds (retried in the background)"
                );
                this.retry_delay()
            }
        };
        tokio::spawn(refresh_in_background(Arc::downgrade(&this), next));
        Ok(this)
    }

    /// The keys held now.
    pub fn keys(&self) -> Arc<Vec<Key>> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Shortest time between refetches.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The URL, for messages.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// Refetches because a token names a `kid` not held, unless one did less than the refetch
    /// interval ago; waits for a fetch already in flight either way.
    pub async fn refetch_for_unknown_kid(&self) -> Refetch {
        let allowed = {
            let mut last = match self.last_unknown_kid_refetch.lock() {
                Ok(l) => l,
                Err(poisoned) => poisoned.into_inner(),
            };
            let allowed = last.is_none_or(|t| t.elapsed() >= self.interval);
            if allowed {
                *last = Some(Instant::now());
            }
            allowed
        };
        if !allowed {
            drop(self.fetching.lock().await);
            return Refetch::TooSoon;
        }
        match self.refresh().await {
            Ok(_) => Refetch::Fetched,
            Err(e) => {
                tracing::warn!(error = %e, "the identity provider's keys could not be refetched");
                Refetch::Failed(e)
            }
        }
    }

    fn retry_delay(&self) -> Duration {
        self.interval.max(Duration::from_millis(10))
    }

    /// Fetches and replaces the keys; on failure keeps them. Returns when to refresh next.
    async fn refresh(&self) -> Result<Duration, String> {
        let _one_at_a_time = self.fetching.lock().await;
        let (keys, max_age) = self.fetch().await?;
        tracing::info!(
            url = %self.shown,
            keys = keys.len(),
            kids = ?keys.iter().filter_map(|k| k.kid.as_deref()).collect::<Vec<_>>(),
            "identity provider keys fetched"
        );
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        Ok(max_age
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(self.retry_delay(), LONGEST_MAX_AGE.max(self.retry_delay())))
    }

    async fn fetch(&self) -> Result<(Vec<Key>, Option<Duration>), String> {
        let shown = &self.shown;
        let mut resp = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{shown} is unreachable: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{shown} answered HTTP {}", resp.status()));
        }
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(format!("{shown} sent more than {MAX_DOCUMENT_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("{shown} broke off: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{shown} sent more than {MAX_DOCUMENT_BYTES} bytes"));
            }
        }
        let text = String::from_utf8(body).map_err(|_| format!("{shown} sent no UTF-8 text"))?;
        let keys = keys::parse_jwks(&text, shown).map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Err(format!("{shown} holds no signing key this service can use"));
        }
        Ok((keys, max_age))
    }
}

/// Refreshes the keys when they run out, for as long as the verifier lives.
async fn refresh_in_background(keys: Weak<RemoteKeys>, mut wait: Duration) {
    loop {
        tokio::time::sleep(wait).await;
        let Some(keys) = keys.upgrade() else { return };
        wait = match keys.refresh().await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    held = keys.keys().len(),
                    "the identity provider's keys could not be refreshed; the keys held are kept"
                );
                keys.retry_delay()
            }
        };
    }
}

/// The lifetime a `Cache-Control` header gives: `max-age`, or none for `no-cache`/`no-store`.
fn max_age(cache_control: &str) -> Option<Duration> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_gives_the_lifetime() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("no-cache"), Some(Duration::ZERO));
        assert_eq!(max_age("max-age=60, no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
