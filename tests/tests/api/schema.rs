//! The SDL in the repository is the schema the code serves.
#[test]
fn api_schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/schema.graphql");
    let sdl = cnscd_api::schema::sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok() {
        std::fs::write(path, &sdl).unwrap();
    }
    let file = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        file == sdl,
        "api/schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test -p cnscd-tests schema` \
         (or `cargo run -p cnscd-api -- schema > api/schema.graphql`) and review the diff"
    );
}
