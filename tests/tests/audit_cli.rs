//! `pnc audit verify` as an operator runs it: the real `pnc` binary against the database
//! of a sandbox after some writes, on SQLite and PostgreSQL. An intact chain exits 0; one
//! changed audit row makes it exit non-zero and name the first broken entry.

use std::path::PathBuf;
use std::process::{Command, Output};

use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};
use serde_json::json;

/// The `pnc` binary of this build: next to the test binary's `deps` directory, built
/// first (a no-op when fresh) so the test never runs a stale one.
fn pnc_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("test binary path");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("debug")
        .to_string();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "pnc", "--bin", "pnc"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile != "debug" {
        build.args(["--profile", &profile]);
    }
    let status = build.status().expect("cargo build -p pnc");
    assert!(status.success(), "building the pnc binary failed");
    let binary = profile_dir.join("pnc");
    assert!(binary.exists(), "{} missing", binary.display());
    binary
}

fn audit_verify(binary: &PathBuf, sandbox: &Sandbox) -> Output {
    let mut command = Command::new(binary);
    command
        .args(["audit", "verify", "--data-dir"])
        .arg(sandbox.data_dir.path());
    // The binary reads `PNC_…` overrides; the test environment's (PNC_TEST_POSTGRES_URL)
    // are not its config.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PNC_") {
            command.env_remove(name);
        }
    }
    if let Some(url) = &sandbox.config.database_url {
        command.args(["--database-url", url]);
    }
    command.output().expect("run pnc audit verify")
}

#[tokio::test]
async fn pnc_audit_verify_binary_detects_a_changed_row() {
    let binary = pnc_binary();
    for backend in Backend::ALL {
        audit_verify_on(&binary, backend).await;
    }
}

async fn audit_verify_on(binary: &PathBuf, backend: Backend) {
    let sandbox = Sandbox::start(backend).await;
    // A few audited writes: webhook subscriptions of two clients, one updated.
    let oem = sandbox.client(Role::Oem, &["PNC"], &[], &[]).await;
    let emsp = sandbox.client(Role::Emsp, &[], &["DE-PNC"], &[]).await;
    let mut ids = Vec::new();
    for (token, events) in [
        (&oem.token, json!(["oem.contract.created"])),
        (&emsp.token, json!(["mo.contract.created.sent.to.oem"])),
        (&oem.token, json!(["oem.contract.updated"])),
    ] {
        let response = sandbox
            .http
            .post(sandbox.url("/v1/webhook/endpoints"))
            .bearer_auth(token)
            .json(&json!({"url": "https://hooks.example.com/pnc", "enabledEvents": events}))
            .send()
            .await
            .expect("subscribe");
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.expect("json");
        ids.push(body["id"].as_str().expect("id").to_string());
    }
    let response = sandbox
        .http
        .put(sandbox.url(&format!("/v1/webhook/endpoints/{}", ids[0])))
        .bearer_auth(&oem.token)
        .json(&json!({"url": "https://hooks.example.com/pnc/v2"}))
        .send()
        .await
        .expect("update");
    assert_eq!(response.status(), 200);

    let intact = audit_verify(binary, &sandbox);
    let stdout = String::from_utf8_lossy(&intact.stdout);
    assert!(
        intact.status.success(),
        "{backend:?}: intact chain must exit 0: {:?} {stdout} {}",
        intact.status,
        String::from_utf8_lossy(&intact.stderr)
    );
    let entries: u64 = stdout
        .trim()
        .strip_prefix("audit log intact: ")
        .and_then(|rest| rest.strip_suffix(" entries"))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{backend:?}: unexpected output `{stdout}`"));
    assert!(
        entries >= 4,
        "{backend:?}: 3 subscriptions and 1 update: {entries}"
    );

    // Someone with SQL access rewrites who made the second entry.
    let database = pnc_registry::open_database(&sandbox.storage())
        .await
        .expect("registry database");
    let original_actor: String =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE sequence = 2")
            .fetch_one(database.pool())
            .await
            .expect("actor");
    let changed = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE sequence = 2")
        .execute(database.pool())
        .await
        .expect("tamper")
        .rows_affected();
    assert_eq!(changed, 1);
    let broken = audit_verify(binary, &sandbox);
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(
        !broken.status.success(),
        "{backend:?}: a changed row must fail the check: {stderr}"
    );
    assert!(
        stderr.contains("audit log broken at entry 2"),
        "{backend:?}: the first broken entry is named: {stderr}"
    );

    // Putting the row back restores the chain: the check is on content, not on the writes.
    sqlx::query("UPDATE audit_log SET actor = $1 WHERE sequence = 2")
        .bind(&original_actor)
        .execute(database.pool())
        .await
        .expect("restore");
    let restored = audit_verify(binary, &sandbox);
    assert!(
        restored.status.success(),
        "{backend:?}: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    sandbox.stop().await;
}
