//! `leadroute org create` as an operator runs it: it prints the org id and a first admin
//! key once, and that key works against the HTTP API (`leadroute api`).

use leadroute_tests::{eventually, TestDb};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn org_create_prints_a_first_admin_key_that_the_api_accepts() {
    let db = TestDb::new().await;
    let out = Command::new(env!("CARGO_BIN_EXE_leadroute"))
        .args(["org", "create", "--name", "Acme", "--database-url", &db.url])
        .output()
        .await
        .expect("run leadroute org create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} not in {printed}"))
    };
    let (org, key) = (field("org_id:"), field("admin key:"));
    assert!(key.starts_with("lrk_"));
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE secret_sha256 = sha256($1::bytea)")
            .bind(key.as_bytes())
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let plain: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys k WHERE k::text LIKE '%' || $1 || '%'")
            .bind(&key)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((stored, plain), (1, 0), "only the key's hash is stored");

    let mut api = Command::new(env!("CARGO_BIN_EXE_leadroute"))
        .args(["api", "--listen", "127.0.0.1:0", "--database-url", &db.url])
        .env("LEADROUTE_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run leadroute api");
    // It listens on a port of the system's choosing and logs which.
    let mut lines = BufReader::new(api.stderr.take().unwrap()).lines();
    let listen = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("API listening") {
                return line
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("address="))
                    .map(str::to_string);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("leadroute api logs the address it listens on");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = reqwest::Client::new();
    let answer = eventually(Duration::from_secs(30), || async {
        let response = client
            .get(format!("http://{listen}/v1/org"))
            .bearer_auth(&key)
            .send()
            .await
            .ok()?;
        response.json::<serde_json::Value>().await.ok()
    })
    .await
    .expect("leadroute api answers");
    assert_eq!(answer["org_id"], org.as_str());
    assert_eq!(answer["name"], "Acme");
}
