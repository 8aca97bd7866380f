//! The `pnc` binary as an operator runs it: config handling and exit codes, `serve` on a
//! fresh data dir, graceful shutdown, and five processes against PostgreSQL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PNC: &str = env!("CARGO_BIN_EXE_pnc");

fn pnc() -> Command {
    let mut command = Command::new(PNC);
    // The developer's environment must not leak into these tests.
    for (name, _) in std::env::vars() {
        if name.starts_with("PNC_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "warn");
    command
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Kills the child when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(command: &mut Command) -> Process {
    Process(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pnc"),
    )
}

/// Polls `url` until it answers 200; the bound is generous so a busy machine does not
/// fail the test, and the time taken is printed.
async fn wait_healthy(url: &str, bound: Duration) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status() == 200
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "{url} not healthy within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn ok_config_print_shows_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pnc.toml");
    std::fs::write(
        &config,
        "database_url = \"postgres://pnc:s3cret-pass@db.example:5432/pnc\"\n[http]\nmax_body_bytes = 2048\n",
    )
    .unwrap();
    let output = pnc()
        .args(["config", "print", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:9999"])
        .env("PNC_HTTP__REQUEST_TIMEOUT_MS", "1234")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(!printed.contains("s3cret-pass"), "{printed}");
    assert!(
        printed.contains("postgres://pnc:redacted@db.example:5432/pnc"),
        "{printed}"
    );
    assert!(
        printed.contains("listen = \"127.0.0.1:9999\""),
        "flag wins: {printed}"
    );
    assert!(printed.contains("max_body_bytes = 2048"), "file: {printed}");
    assert!(
        printed.contains("request_timeout_ms = 1234"),
        "environment: {printed}"
    );
}

#[test]
fn fail_malformed_config_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pnc.toml");
    std::fs::write(&config, "[http]\nmax_body_bytez = 1\n").unwrap();
    for subcommand in [&["config", "print"][..], &["serve"][..]] {
        let output = pnc()
            .args(subcommand)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{subcommand:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("max_body_bytez"), "{stderr}");
    }

    let output = pnc()
        .args(["config", "print"])
        .env("PNC_LISTN", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PNC_LISTN"));
}

#[test]
fn fail_unreachable_database_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let output = pnc()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args([
            "--database-url",
            &format!("postgres://nobody:pw@127.0.0.1:{port}/pnc"),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the Postgres database"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains(":pw@"),
        "the password is not printed: {stderr}"
    );
}

#[tokio::test]
async fn ok_serve_on_a_fresh_data_dir_answers_healthz_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = spawn(
        pnc()
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("fresh"))
            .args(["--listen", &format!("127.0.0.1:{port}")]),
    );
    let took = wait_healthy(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(60),
    )
    .await;
    println!("healthy after {took:?}");

    // A client made while the server runs can get a token at once.
    let credentials = client_add(&dir.path().join("fresh"), None);
    let token = token(port, &credentials).await;
    assert!(!token.is_empty());

    // SIGTERM: a clean exit.
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || server.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

fn client_add(data_dir: &Path, database_url: Option<&str>) -> Value {
    let mut command = pnc();
    command
        .args(["client", "add", "--data-dir"])
        .arg(data_dir)
        .args(["--name", "ops", "--role", "cpo", "--operator-id", "DE*PNC"]);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("client add prints JSON")
}

async fn token(port: u16, credentials: &Value) -> String {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/oauth/token"))
        .json(&serde_json::json!({
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
            "audience": "https://pnc.test",
            "grant_type": "client_credentials",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

#[test]
fn fail_client_add_with_a_bad_role_or_scope_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = pnc()
        .args(["client", "add", "--data-dir"])
        .arg(dir.path())
        .args(["--name", "x", "--role", "root"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = pnc()
        .args(["client", "add", "--data-dir"])
        .arg(dir.path())
        .args(["--name", "x", "--role", "oem"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "an OEM needs a WMI");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--wmi"));
}

/// The production shape: each component in its own process, on PostgreSQL, finding the
/// others by URL; the internal CA comes from the shared data dir.
#[tokio::test]
async fn ok_five_processes_on_postgres_serve_a_request_that_crosses_them() {
    let database = pnc_tests::postgres::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("shared");
    let ports: Vec<(pnc_common::Component, u16)> = pnc_common::Component::SERVICES
        .into_iter()
        .map(|component| (component, free_port()))
        .collect();
    let url_flags: Vec<String> = ports
        .iter()
        .flat_map(|(component, port)| {
            [
                format!("--{}-url", component.name()),
                format!("https://127.0.0.1:{port}"),
            ]
        })
        .collect();
    let gateway_port = free_port();
    let mut processes = Vec::new();
    // The first process makes the internal CA; start it alone so the others share it.
    for (index, (component, port)) in ports.iter().enumerate() {
        processes.push(spawn(
            pnc()
                .args(["serve", "--only", component.name(), "--data-dir"])
                .arg(&data_dir)
                .args(["--database-url", &database.url])
                .args(["--grpc-listen", &format!("127.0.0.1:{port}")])
                .args(&url_flags),
        ));
        if index == 0 {
            wait_for_port(*port).await;
        }
    }
    processes.push(spawn(
        pnc()
            .args(["serve", "--only", "gateway", "--data-dir"])
            .arg(&data_dir)
            .args(["--database-url", &database.url])
            .args(["--listen", &format!("127.0.0.1:{gateway_port}")])
            .args(&url_flags),
    ));

    let took = wait_healthy(
        &format!("http://127.0.0.1:{gateway_port}/healthz"),
        Duration::from_secs(90),
    )
    .await;
    println!("five processes healthy after {took:?}");

    // gateway → registry (token) → gateway → truststore (roots): two processes besides
    // the gateway, over mTLS, on PostgreSQL.
    let credentials = client_add(&data_dir, Some(&database.url));
    let token = token(gateway_port, &credentials).await;
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{gateway_port}/v1/root/rootCerts"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["RootCertificateCollection"]["rootCertificates"].is_array(),
        "{body}"
    );

    // Every service keeps its tables in its own schema of the one database.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database.url).await.unwrap();
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name IN \
         ('truststore', 'registry', 'ocsp', 'provisioning') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(schemas, ["ocsp", "provisioning", "registry", "truststore"]);
    pool.close().await;
    drop(processes);
}

async fn wait_for_port(port: u16) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "port {port} never opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The configuration shipped in deploy/ must load: a typo there would only show in a
/// cluster.
#[test]
fn ok_deploy_config_loads() {
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/configmap.yaml"),
    )
    .unwrap();
    let toml: String = manifest
        .split_once("pnc.toml: |\n")
        .expect("pnc.toml in the ConfigMap")
        .1
        .lines()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pnc.toml");
    std::fs::write(&file, toml).unwrap();
    let config = pnc_common::Config::load(Some(&file), Vec::new()).expect("deploy config loads");
    assert_eq!(
        config.services.url_of(pnc_common::Component::Ocsp),
        "https://pnc-ocsp:7003"
    );

    // The compose file's environment overrides name real fields.
    let compose = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/compose.yaml"),
    )
    .unwrap();
    let env: Vec<(String, String)> = compose
        .lines()
        .filter_map(|line| {
            let (name, value) = line.trim().split_once(": ")?;
            name.starts_with("PNC_")
                .then(|| (name.to_string(), value.to_string()))
        })
        .collect();
    assert!(env.len() >= 5, "{env:?}");
    pnc_common::Config::load(None, env).expect("compose environment loads");
}

/// The README's configuration reference is the truth: its values are the defaults, and it
/// names every field there is.
#[test]
fn ok_readme_configuration_reference_matches_the_code() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let reference = readme
        .split("The complete reference, with the defaults:\n\n```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the reference block");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reference.toml");
    std::fs::write(&file, reference).unwrap();
    let documented = pnc_common::Config::load(Some(&file), Vec::new()).expect("reference loads");
    assert_eq!(
        documented,
        pnc_common::Config::default(),
        "documented defaults"
    );

    let defaults: toml::Table =
        toml::from_str(&toml::to_string(&pnc_common::Config::default()).unwrap()).unwrap();
    let mut missing = Vec::new();
    collect_keys(&defaults, "", &mut |path, key| {
        let documented = reference.lines().any(|line| {
            let line = line.trim_start_matches('#').trim();
            line.starts_with(&format!("{key} =")) || line.starts_with(&format!("[{path}{key}]"))
        });
        if !documented {
            missing.push(format!("{path}{key}"));
        }
    });
    assert!(missing.is_empty(), "README does not document {missing:?}");
}

fn collect_keys(table: &toml::Table, path: &str, visit: &mut dyn FnMut(&str, &str)) {
    for (key, value) in table {
        visit(path, key);
        if let toml::Value::Table(inner) = value {
            collect_keys(inner, &format!("{path}{key}."), visit);
        }
    }
}
