//! Rebuild when a migration changes: `sqlx::migrate!` embeds `deploy/migrations` at build time.

fn main() {
    println!("cargo:rerun-if-changed=../deploy/migrations");
}
