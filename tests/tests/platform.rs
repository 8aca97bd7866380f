//! The platform through the HTTP edge: health, tokens, authentication errors, body
//! limits, the error shape, metrics and the OpenAPI document, on SQLite and PostgreSQL.

use pnc_common::Component;
use pnc_proto::principal::Role;
use pnc_tests::{Backend, Sandbox};
use serde_json::Value;

async fn json(response: reqwest::Response) -> (u16, Value, Option<String>) {
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, request_id)
}

/// Asserts OPCP's error body and that its traceId is the request's ID.
fn assert_error_body(body: &Value, request_id: Option<&str>, expected_message_part: &str) {
    let messages = body["errorMessages"]
        .as_array()
        .unwrap_or_else(|| panic!("errorMessages missing in {body}"));
    assert!(!messages.is_empty(), "{body}");
    assert!(
        messages.iter().any(|message| message
            .as_str()
            .unwrap_or("")
            .contains(expected_message_part)),
        "expected a message containing `{expected_message_part}` in {body}"
    );
    let trace_id = body["traceId"].as_str().expect("traceId");
    assert!(
        uuid::Uuid::parse_str(trace_id).is_ok(),
        "traceId is a UUID: {trace_id}"
    );
    assert_eq!(Some(trace_id), request_id, "traceId equals x-request-id");
}

#[tokio::test]
async fn ok_health_tokens_and_a_call_across_services_on_both_backends() {
    for backend in Backend::ALL {
        let sandbox = Sandbox::start(backend).await;

        let (status, body, _) = json(
            sandbox
                .http
                .get(sandbox.url("/healthz"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        for component in Component::SERVICES {
            assert_eq!(body["services"][component.name()], "serving", "{body}");
        }

        // Gateway → registry (credentials) and gateway → truststore (roots).
        let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
        let (status, body, _) = json(
            sandbox
                .http
                .get(sandbox.url("/v1/root/rootCerts"))
                .bearer_auth(&cpo.token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert!(
            body["RootCertificateCollection"]["rootCertificates"].is_array(),
            "{body}"
        );

        // MaEVe sends the token in x-api-key.
        let response = sandbox
            .http
            .get(sandbox.url("/v1/root/rootCerts"))
            .header("x-api-key", &cpo.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        sandbox.stop().await;
    }
}

#[tokio::test]
async fn ok_token_endpoint_takes_json_and_form_bodies() {
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    let emsp = sandbox.client(Role::Emsp, &[], &["DE-PNC"], &[]).await;

    // CitrineOS posts the same fields form-encoded.
    let response = sandbox
        .http
        .post(sandbox.url("/oauth/token"))
        .form(&[
            ("client_id", emsp.client_id.as_str()),
            ("client_secret", emsp.client_secret.as_str()),
            ("audience", "https://eu.plugncharge-qa.hubject.com"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    assert!(
        body["scope"].as_str().unwrap().contains("cpservice"),
        "{body}"
    );
    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(access_token.split('.').count(), 3, "a JWT");
}

#[tokio::test]
async fn fail_token_endpoint_errors_use_oauth_shape() {
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    let admin = sandbox.admin().await;
    let cases = [
        (
            "fail/wrong-secret",
            serde_json::json!({"client_id": admin.client_id, "client_secret": "nope", "audience": "a", "grant_type": "client_credentials"}),
            401,
            "invalid_client",
        ),
        (
            "fail/unknown-client",
            serde_json::json!({"client_id": "nobody", "client_secret": admin.client_secret, "audience": "a", "grant_type": "client_credentials"}),
            401,
            "invalid_client",
        ),
        (
            "fail/missing-secret",
            serde_json::json!({"client_id": admin.client_id, "audience": "a", "grant_type": "client_credentials"}),
            400,
            "invalid_request",
        ),
        (
            "fail/other-grant",
            serde_json::json!({"client_id": admin.client_id, "client_secret": admin.client_secret, "grant_type": "password"}),
            400,
            "unsupported_grant_type",
        ),
    ];
    for (name, request, expected_status, expected_error) in cases {
        let response = sandbox
            .http
            .post(sandbox.url("/oauth/token"))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected_status, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], expected_error, "{name}: {body}");
        assert!(body["error_description"].is_string(), "{name}");
    }
}

#[tokio::test]
async fn fail_authentication_errors_are_401_in_opcp_shape() {
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    let cases: [(&str, Option<String>, &str); 4] = [
        ("fail/no-token", None, "missing access token"),
        (
            "fail/garbage-token",
            Some("Bearer abc.def.ghi".into()),
            "invalid access token",
        ),
        (
            "fail/wrong-scheme",
            Some("Basic dXNlcjpwYXNz".into()),
            "missing access token",
        ),
        // A structurally valid token signed by another installation's key.
        (
            "fail/foreign-token",
            Some(format!("Bearer {}", foreign_token().await)),
            "invalid access token",
        ),
    ];
    for (name, authorization, expected) in cases {
        let mut request = sandbox.http.get(sandbox.url("/v1/root/rootCerts"));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let (status, body, request_id) = json(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_error_body(&body, request_id.as_deref(), expected);
    }
}

async fn foreign_token() -> String {
    let other = Sandbox::start(Backend::Sqlite).await;
    let admin = other.admin().await;
    other.stop().await;
    admin.token
}

#[tokio::test]
async fn fail_authentication_is_checked_before_the_body() {
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    // A malformed body without a token gets 401, not 400.
    let response = sandbox
        .http
        .put(sandbox.url("/v1/root/rootCerts"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn fail_oversized_bodies_are_413() {
    let sandbox = Sandbox::start_with(Backend::Sqlite, |config| {
        config.http.max_body_bytes = 4096;
    })
    .await;
    let admin = sandbox.admin().await;
    let big = "x".repeat(10_000);
    let (status, body, request_id) = json(
        sandbox
            .http
            .put(sandbox.url("/v1/root/rootCerts"))
            .bearer_auth(&admin.token)
            .header("content-type", "application/json")
            .body(format!(
                "{{\"caCertificate\":\"{big}\",\"rootType\":\"V2G\"}}"
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_error_body(&body, request_id.as_deref(), "too large");

    // The token endpoint refuses too, in its own shape.
    let response = sandbox
        .http
        .post(sandbox.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn fail_unknown_paths_and_methods_answer_in_opcp_shape() {
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    let (status, body, request_id) = json(
        sandbox
            .http
            .get(sandbox.url("/v1/nothing/here"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_error_body(&body, request_id.as_deref(), "no such endpoint");
    let (status, body, request_id) = json(
        sandbox
            .http
            .delete(sandbox.url("/oauth/token"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405);
    assert_error_body(&body, request_id.as_deref(), "method not allowed");
}

#[tokio::test]
async fn ok_trace_id_from_caller_is_kept() {
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    let trace_id = uuid::Uuid::new_v4().to_string();
    let (status, body, request_id) = json(
        sandbox
            .http
            .get(sandbox.url("/v1/root/rootCerts"))
            .header("x-request-id", &trace_id)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["traceId"], trace_id.as_str());
    assert_eq!(request_id.as_deref(), Some(trace_id.as_str()));
}

#[tokio::test]
async fn ok_metrics_and_openapi() {
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    let admin = sandbox.admin().await;
    let _ = sandbox
        .http
        .get(sandbox.url("/v1/root/rootCerts"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();

    let metrics = sandbox
        .http
        .get(sandbox.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pnc_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("route=\"/v1/root/rootCerts\""),
        "route label is the template: {metrics}"
    );
    assert!(
        metrics.contains("pnc_grpc_request_duration_seconds"),
        "per-RPC latency histogram: {metrics}"
    );
    assert!(
        metrics.contains("method=\"/pnc.truststore.v1.TrustStore/ListRoots\""),
        "{metrics}"
    );

    let openapi: Value = sandbox
        .http
        .get(sandbox.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/oauth/token", "/healthz", "/v1/root/rootCerts"] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} in the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn fail_healthz_names_services_that_do_not_answer() {
    // A gateway alone, pointed at ports where nothing listens.
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = pnc_common::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.path().to_path_buf(),
        ..Default::default()
    };
    for component in Component::SERVICES {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = unused.local_addr().unwrap().port();
        drop(unused);
        config
            .services
            .set_url_of(component, format!("https://127.0.0.1:{port}"));
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = pnc::serve::start_one(Component::Gateway, config, shutdown.clone())
        .await
        .unwrap();
    let address = running.address_of(Component::Gateway).unwrap();
    let response = reqwest::get(format!("http://{address}/healthz"))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|value| value.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap();
    for component in Component::SERVICES {
        assert_error_body(&body, request_id.as_deref(), component.name());
    }
    shutdown.cancel();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn fail_services_refuse_callers_outside_their_allowlist() {
    // The OCSP service may only be called by the gateway; a registry identity is refused
    // even though it holds a certificate from the same internal CA.
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    let ca = pnc_common::tls::InternalCa::from_config(&sandbox.config).unwrap();
    let registry_identity = ca.issue(Component::Registry).unwrap();
    let channel = pnc_common::grpc::connect(
        &sandbox.config.services.url_of(Component::Ocsp),
        &registry_identity,
        &sandbox.config.grpc,
    )
    .unwrap();
    let error = pnc_common::grpc::check_health(channel).await.unwrap_err();
    assert!(
        error.contains("does not accept calls from registry"),
        "{error}"
    );

    // The gateway's identity is accepted.
    let gateway_identity = ca.issue(Component::Gateway).unwrap();
    let channel = pnc_common::grpc::connect(
        &sandbox.config.services.url_of(Component::Ocsp),
        &gateway_identity,
        &sandbox.config.grpc,
    )
    .unwrap();
    pnc_common::grpc::check_health(channel).await.unwrap();
}

#[tokio::test]
async fn fail_client_of_another_internal_ca_is_refused_by_tls() {
    let sandbox = Sandbox::start(Backend::Sqlite).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = pnc_common::tls::InternalCa::load_or_create(other_dir.path()).unwrap();
    let identity = other_ca.issue(Component::Gateway).unwrap();
    let channel = pnc_common::grpc::connect(
        &sandbox.config.services.url_of(Component::Registry),
        &identity,
        &sandbox.config.grpc,
    )
    .unwrap();
    assert!(pnc_common::grpc::check_health(channel).await.is_err());
}

#[tokio::test]
async fn fail_database_outage_at_run_time_is_503_not_a_panic() {
    let sandbox = Sandbox::start(Backend::Postgres).await;
    let cpo = sandbox.client(Role::Cpo, &[], &[], &["DE*PNC"]).await;
    sandbox.break_database().await;

    // Token checks need no database; the root pool does.
    let (status, body, request_id) = json(
        sandbox
            .http
            .get(sandbox.url("/v1/root/rootCerts"))
            .bearer_auth(&cpo.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_error_body(&body, request_id.as_deref(), "unavailable");

    // Each service's health watch notices within a few of its 2 s rounds; every service
    // with a database ends up named.
    let started = std::time::Instant::now();
    loop {
        let response = sandbox
            .http
            .get(sandbox.url("/healthz"))
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            let body: Value = response.json().await.unwrap();
            let text = body.to_string();
            if Component::SERVICES
                .iter()
                .all(|component| text.contains(component.name()))
            {
                break;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "healthz never reported the outage"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn ok_in_flight_requests_finish_after_shutdown_is_requested() {
    // Services that accept connections but never answer make /healthz wait for its 2 s
    // health-check deadline: a request that is certainly in flight when shutdown comes.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("https://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = pnc_common::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.path().to_path_buf(),
        ..Default::default()
    };
    for component in Component::SERVICES {
        config.services.set_url_of(component, silent_url.clone());
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = pnc::serve::start_one(Component::Gateway, config, shutdown.clone())
        .await
        .unwrap();
    let address = running.address_of(Component::Gateway).unwrap();

    let in_flight =
        tokio::spawn(async move { reqwest::get(format!("http://{address}/healthz")).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    shutdown.cancel();

    // The request started before the shutdown still gets its full answer.
    let response = in_flight.await.unwrap().expect("an answer, not a reset");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["errorMessages"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    running.wait().await.unwrap();

    // And the listener is closed afterwards.
    assert!(
        reqwest::get(format!("http://{address}/healthz"))
            .await
            .is_err()
    );
    hold.abort();
}

/// The names of this process's threads that serve the HTTP edge (`http.server_threads`).
fn http_server_threads() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| name.starts_with("pnc-http-"))
        .collect();
    names.sort();
    names
}

/// Waits (at most 5 s) until [`http_server_threads`] is `expected`: a thread names itself
/// once it runs, and leaves `/proc` only after it has returned.
async fn await_http_server_threads(expected: &[&str]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while http_server_threads() != expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(http_server_threads(), expected);
}

/// `http.server_threads = 2`: two threads with a listener each on one port serve the whole
/// API (here tokens from the registry and the truststore's roots, reached in-process from
/// those threads), and they stop with the rest.
async fn server_threads_serve_the_edge(backend: Backend) {
    let sandbox = Sandbox::start_with(backend, |config| {
        config.http.server_threads = 2;
        config.http.header_read_timeout_ms = SHORT_HEADER_READ_TIMEOUT_MS;
    })
    .await;
    await_http_server_threads(&["pnc-http-0", "pnc-http-1"]).await;
    // Each thread's event loop keeps the header-read timeout (on one thread, at least).
    slow_or_idle_connections_are_closed(&sandbox).await;
    let admin = sandbox.admin().await;

    // A new connection per request, so the kernel spreads them over both listeners.
    let requests = (0..32).map(|_| {
        let url = sandbox.url("/v1/root/rootCerts");
        let token = admin.token.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("an answer");
            (response.status().as_u16(), response.json::<Value>().await)
        })
    });
    for request in requests.collect::<Vec<_>>() {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200);
        assert!(body.is_ok_and(|body| body.is_array() || body.is_object()));
    }
    let health = sandbox.url("/healthz");
    sandbox.stop().await;
    await_http_server_threads(&[]).await;
    assert!(reqwest::get(health).await.is_err(), "the port is closed");
}

// One test for both backends: the thread names are process-wide, and tests run in parallel.
#[tokio::test]
async fn ok_server_threads_serve_the_edge_on_sqlite_and_postgres() {
    server_threads_serve_the_edge(Backend::Sqlite).await;
    server_threads_serve_the_edge(Backend::Postgres).await;
}

/// Reads from `stream` until the server closes it (EOF or reset), failing if it does not
/// within `bound` or if it sends anything.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, bound: std::time::Duration) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 256];
    match tokio::time::timeout(bound, stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(read)) => panic!(
            "expected the connection closed, got {:?}",
            String::from_utf8_lossy(&buffer[..read])
        ),
        Err(_) => panic!("the connection was still open after {bound:?}"),
    }
}

/// A client that connects and sends nothing, or half a request head, or keeps an idle
/// keep-alive connection, is disconnected after `http.header_read_timeout_ms`
/// ([`SHORT_HEADER_READ_TIMEOUT_MS`] here); one that sends its head in pieces within that
/// time is answered.
async fn slow_or_idle_connections_are_closed(sandbox: &Sandbox) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    const HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: pnc\r\n\r\n";
    // Far above the timeout, so a busy machine does not fail the test.
    let bound = std::time::Duration::from_secs(20);
    let address = sandbox.base_url.trim_start_matches("http://");

    // fail/silent: connected, nothing sent.
    let mut silent = TcpStream::connect(address).await.unwrap();
    // fail/half-a-head: the request line and a header, never the blank line.
    let mut half = TcpStream::connect(address).await.unwrap();
    half.write_all(&HEAD[..HEAD.len() - 2]).await.unwrap();
    // fail/idle-keep-alive: one request answered, then nothing.
    let mut idle = TcpStream::connect(address).await.unwrap();
    idle.write_all(HEAD).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = idle.read(&mut answer).await.unwrap();
    let answered = |read: usize, answer: &[u8]| {
        assert!(
            answer[..read].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&answer[..read])
        )
    };
    answered(read, &answer);
    for stream in [&mut silent, &mut half, &mut idle] {
        closed_by_server(stream, bound).await;
    }

    // ok/head-in-pieces: three writes 20 ms apart, well within the timeout.
    let mut pieces = TcpStream::connect(address).await.unwrap();
    for piece in HEAD.chunks(12) {
        pieces.write_all(piece).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let read = pieces.read(&mut answer).await.unwrap();
    answered(read, &answer);
}

const SHORT_HEADER_READ_TIMEOUT_MS: u64 = 1000;

#[tokio::test]
async fn ok_slow_or_idle_connections_are_closed_after_the_header_read_timeout() {
    let sandbox = Sandbox::start_with(Backend::Sqlite, |config| {
        config.http.header_read_timeout_ms = SHORT_HEADER_READ_TIMEOUT_MS;
    })
    .await;
    slow_or_idle_connections_are_closed(&sandbox).await;
    sandbox.stop().await;
}

/// A `GET` on a connection of its own (`Connection: close`): the answer, or `None` when the
/// server closed the connection without one.
async fn get_on_new_connection(address: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: pnc\r\nConnection: close\r\n\r\n");
    // A refused connection may be reset before or after the write.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("answered or closed within 20 s");
    (read.is_ok() && !answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned())
}

/// [`get_on_new_connection`] until answered (at most 5 s): the server releases a closed
/// connection's place when it notices the close, not when the client closes.
async fn get_when_a_place_is_free(address: &str, path: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match get_on_new_connection(address, path).await {
            Some(answer) => return answer,
            None if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            None => panic!("{path}: no place free within 5 s"),
        }
    }
}

/// `pnc_http_connections_refused_total` in this process's metrics.
async fn connections_refused(address: &str) -> u64 {
    let metrics = get_when_a_place_is_free(address, "/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("pnc_http_connections_refused_total "))
        .map_or(0, |value| value.trim().parse().expect("a count"))
}

/// `http.max_connections = 2`: with two keep-alive connections open, a third is closed
/// unanswered and counted; once one of the two closes, a new connection is answered.
#[tokio::test]
async fn ok_connections_beyond_max_connections_are_closed_on_accept() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sandbox = Sandbox::start_with(Backend::Sqlite, |config| {
        config.http.max_connections = 2;
    })
    .await;
    let address = sandbox.base_url.trim_start_matches("http://").to_string();
    let refused_before = connections_refused(&address).await;

    // Two keep-alive connections, each answered once and then held open.
    let mut open = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while open.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "two connections admitted"
        );
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: pnc\r\n\r\n")
            .await;
        let mut answer = vec![0u8; 4096];
        match stream.read(&mut answer).await {
            Ok(read) if answer[..read].starts_with(b"HTTP/1.1 200") => open.push(stream),
            // The metrics request's place was not free yet.
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }

    // fail/over-the-cap: closed as accepted, without an answer.
    assert_eq!(get_on_new_connection(&address, "/healthz").await, None);

    // ok/place-freed: one of the two closes; a new connection is answered.
    open.pop();
    let answer = get_when_a_place_is_free(&address, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(open);
    assert!(connections_refused(&address).await > refused_before);
    sandbox.stop().await;
}
