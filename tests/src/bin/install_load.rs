//! The contract-installation load benchmark (a benchmark, not a test).
//!
//! Starts the release `pnc serve` as a child process on a fresh data dir and a free loopback
//! port, registers the dev PKI's example vehicle (OPCP PCP) and generates its contract (CPS
//! generate) over HTTP as the end-to-end tests do, builds one ISO 15118-2
//! CertificateInstallationReq signed with the vehicle key, then drives
//! `POST /v1/ocpp/get-15118-ev-certificate` with `wrk` at several concurrencies. Every answer
//! must be HTTP 200 carrying the expected positive `exiResponse`; anything else fails the
//! run. In the same run it measures the machine's crypto ceiling with
//! `openssl speed ecdsap256`: an installation with pre-signed data costs about two ECDSA
//! P-256 verifications at request time, so the ceiling is verify/s ÷ 2 installs/s.
//!
//! ```sh
//! install_load [--pnc target/release/pnc] [--duration 10] [--concurrency 1,16,64] [--out FILE]
//! ```
//!
//! Prints a markdown report (machine, table, ceiling, exiResponse size) and writes it to
//! `--out` when given. Loopback only; the server it starts is killed when it exits, also on
//! a panic or Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pnc_exi::signature::{self, Profile};
use pnc_pki::Certificate;
use pnc_pki::dev::{DevCert, DevPki, KEYS_DIR};
use pnc_pki::keystore::{Kek, KeyStore};
use serde_json::{Value, json};
use time::OffsetDateTime;

const ISO2_NAMESPACE: &str = "urn:iso:15118:2:2013:MsgDef";
/// The dev PKI's example vehicle (DevPkiOptions::default).
const EXAMPLE_PCID: &str = "PNCDEMOVEHICLE0011";
const EMAID: &str = "DEPNCC00000001";
const INSTALL_PATH: &str = "/v1/ocpp/get-15118-ev-certificate";
/// OCPP 2.0.1's `exiResponse` limit in base64 characters.
const OCPP_201_MAX_EXI_RESPONSE_CHARS: usize = 5600;
/// ECDSA P-256 verifications per installation at request time with pre-signed contract
/// data, as issue 5 counts them (the EV's request signature and its provisioning
/// certificate's; the Sub-CAs' signatures are the same on every request).
const VERIFICATIONS_PER_INSTALL: f64 = 2.0;

struct Options {
    pnc: PathBuf,
    duration_seconds: u64,
    concurrencies: Vec<u32>,
    out: Option<PathBuf>,
}

fn options() -> Result<Options> {
    let mut options = Options {
        pnc: PathBuf::from("target/release/pnc"),
        duration_seconds: 10,
        concurrencies: vec![1, 16, 64],
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--pnc" => options.pnc = PathBuf::from(value()?),
            "--duration" => options.duration_seconds = value()?.parse()?,
            "--concurrency" => {
                options.concurrencies = value()?
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!(
                    "install_load [--pnc PATH] [--duration SECONDS] [--concurrency 1,16,64] [--out FILE]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    ensure!(
        options.pnc.is_file(),
        "no pnc binary at {} (cargo build --release -p pnc)",
        options.pnc.display()
    );
    ensure!(
        options.concurrencies.iter().all(|&c| c > 0),
        "concurrency must be positive"
    );
    Ok(options)
}

/// The `pnc serve` child: killed and reaped when dropped (normal exit, error or panic).
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(pnc: &Path, data_dir: &Path, port: u16) -> Result<Server> {
        let log = data_dir.join("serve.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(pnc)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env_remove("PNC_CONFIG")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", pnc.display()))?;
        Ok(Server { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            bail!("pnc serve exited ({status}); its log:\n{log}");
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

struct Pnc {
    http: reqwest::Client,
    base_url: String,
    binary: PathBuf,
    data_dir: PathBuf,
}

impl Pnc {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn wait_healthy(&self, server: &mut Server) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            server.check_alive()?;
            let healthy = match self.http.get(self.url("/healthz")).send().await {
                Ok(response) => response.status() == 200,
                Err(_) => false,
            };
            if healthy {
                return Ok(());
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "pnc did not answer /healthz within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `pnc client add --data-dir …`, then a token through `/oauth/token`.
    async fn client(&self, role: &str, scope: &[&str]) -> Result<String> {
        let output = Command::new(&self.binary)
            .args(["client", "add", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--name", &format!("load {role}"), "--role", role])
            .args(scope)
            .env_remove("PNC_CONFIG")
            .output()?;
        ensure!(
            output.status.success(),
            "pnc client add --role {role}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let credentials: Value = serde_json::from_slice(&output.stdout)?;
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .json(&json!({
                "client_id": credentials["client_id"],
                "client_secret": credentials["client_secret"],
                "audience": "pnc",
                "grant_type": "client_credentials",
            }))
            .send()
            .await?;
        ensure!(
            response.status() == 200,
            "token endpoint: {}",
            response.status()
        );
        let body: Value = response.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no access_token"))
    }

    /// The dev PKI pnc made on first start, loaded from its data dir.
    async fn dev_pki(&self) -> Result<DevPki> {
        let directory = self.data_dir.join("pki");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let loaded = (|| -> Result<DevPki> {
                let kek = Kek::load(&directory.join("kek"))?;
                let key_store = KeyStore::open(directory.join(KEYS_DIR), kek)?;
                Ok(DevPki::load(&directory, &key_store)?)
            })();
            match loaded {
                Ok(pki) => return Ok(pki),
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    return Err(error.context("loading pnc's dev PKI"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Seeding records the example vehicle's issuance last: once that record exists,
    /// pnc's roots and Sub-CAs are known to the truststore too.
    async fn seeding_done(&self, pki: &DevPki) -> bool {
        let args = pnc_common::cli::ServeArgs {
            data_dir: Some(self.data_dir.clone()),
            ..Default::default()
        };
        let Ok(config) = args.load_config() else {
            return false;
        };
        let Ok(storage) = pnc_common::cli::storage_of(&config) else {
            return false;
        };
        let Ok(database) = pnc_registry::open_database(&storage).await else {
            return false;
        };
        let issuer_key_id = pki
            .certificate(DevCert::OemSubCa2)
            .subject_key_identifier()
            .unwrap_or_default()
            .to_vec();
        pnc_registry::issued::IssuedStore::new(database)
            .get(
                &pnc_proto::registry::v1::get_issued_request::Issuer::IssuerKeyId(issuer_key_id),
                pki.certificate(DevCert::OemProvisioning).serial(),
            )
            .await
            .is_ok()
    }

    async fn wait_for_dev_roots(&self, token: &str, pki: &DevPki) -> Result<()> {
        let wanted: Vec<String> = [DevCert::V2gRoot, DevCert::MoRoot, DevCert::OemRoot]
            .into_iter()
            .map(|which| STANDARD.encode(pki.certificate(which).der()))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = self
                .http
                .get(self.url("/v1/root/rootCerts"))
                .bearer_auth(token)
                .send()
                .await?;
            if response.status() == 200 {
                let body: Value = response.json().await?;
                let present: Vec<&str> = body["RootCertificateCollection"]["rootCertificates"]
                    .as_array()
                    .map(|roots| {
                        roots
                            .iter()
                            .filter_map(|root| root["caCertificate"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                if wanted.iter().all(|root| present.contains(&root.as_str()))
                    && self.seeding_done(pki).await
                {
                    return Ok(());
                }
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "pnc's dev roots did not appear in the root pool"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// OPCP PCP: the example vehicle's provisioning chain, as its OEM.
    async fn register_vehicle(&self, oem_token: &str, pki: &DevPki) -> Result<()> {
        let response = self
            .http
            .put(self.url("/v1/oem/provCerts"))
            .bearer_auth(oem_token)
            .json(&json!({
                "vehicleCertificate": STANDARD.encode(pki.certificate(DevCert::OemProvisioning).der()),
                "subCA2Certificate": STANDARD.encode(pki.certificate(DevCert::OemSubCa2).der()),
                "subCA1Certificate": STANDARD.encode(pki.certificate(DevCert::OemSubCa1).der()),
                "xsdMsgDefNamespace": ISO2_NAMESPACE,
            }))
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        ensure!(status == 200, "PCP upload: {status} {body}");
        Ok(())
    }

    /// OPCP CPS generate: pnc issues the contract and pre-signs its contract data.
    async fn generate_contract(&self, emsp_token: &str) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let rfc3339 = |moment: OffsetDateTime| {
            moment
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format")
        };
        let response = self
            .http
            .put(self.url("/v1/cps/generate/signedContractData"))
            .bearer_auth(emsp_token)
            .json(&json!({
                "contractBegins": rfc3339(now - time::Duration::days(30)),
                "contractEnds": rfc3339(now + time::Duration::days(365)),
                "emaid": EMAID,
                "pcid": EXAMPLE_PCID,
                "xsdMsgDefNamespace": ISO2_NAMESPACE,
            }))
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        ensure!(status == 201, "CPS generate: {status} {body}");
        Ok(())
    }
}

/// A `RootCertificateID` naming `root`, with the issuer written the RFC 4514 way.
fn root_id(root: &Certificate) -> Result<pnc_exi::iso2::X509IssuerSerial> {
    let issuer_name = root
        .subject()
        .rdns()
        .iter()
        .rev()
        .flatten()
        .map(|attribute| {
            let name = match attribute.oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.10" => "O",
                "0.9.2342.19200300.100.1.25" => "DC",
                other => other,
            };
            format!("{name}={}", attribute.value)
        })
        .collect::<Vec<_>>()
        .join(",");
    Ok(pnc_exi::iso2::X509IssuerSerial {
        issuer_name,
        serial_number: openssl::bn::BigNum::from_slice(root.serial())?
            .to_dec_str()?
            .to_string(),
    })
}

/// The EV's CertificateInstallationReq, signed with the vehicle key, as EXI.
fn installation_request(pki: &DevPki) -> Result<Vec<u8>> {
    use pnc_exi::iso2::{Body, CertificateInstallationReq, MessageHeader, V2gMessage};
    let vehicle_key = pki.signer(DevCert::OemProvisioning);
    let request = CertificateInstallationReq {
        id: "req".to_string(),
        oem_provisioning_cert: pki.certificate(DevCert::OemProvisioning).der().to_vec(),
        list_of_root_certificate_ids: vec![root_id(pki.certificate(DevCert::V2gRoot))?],
    };
    let element = request.to_element()?;
    let sign = |signed_info: &[u8]| -> Result<Vec<u8>, signature::SignatureError> {
        vehicle_key
            .sign_raw(signed_info)
            .map_err(|error| signature::SignatureError::Signer(error.to_string()))
    };
    let signature = signature::sign_elements(Profile::Iso2, &[&element], &sign)?;
    let message = V2gMessage {
        header: MessageHeader {
            session_id: hex::decode("2A3DC6D75411F647")?,
            notification: None,
            signature: Some(signature),
        },
        body: Body::CertificateInstallationReq(request),
    };
    Ok(message.encode()?)
}

/// One installation through reqwest: the answer must be positive. Returns the
/// `exiResponse` (base64) and whether the answer carried a statusInfo.
async fn install_once(pnc: &Pnc, body: &str, cpo_token: &str) -> Result<(String, Option<Value>)> {
    let response = pnc
        .http
        .post(pnc.url(INSTALL_PATH))
        .bearer_auth(cpo_token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    ensure!(status == 200, "installation: {status} {answer}");
    ensure!(answer["status"] == "Accepted", "installation: {answer}");
    let exi_response = answer["exiResponse"]
        .as_str()
        .ok_or_else(|| anyhow!("no exiResponse"))?
        .to_string();
    let exi = STANDARD.decode(&exi_response)?;
    let root = pnc_exi::decode_document(pnc_exi::Schema::Iso2, &exi)?;
    let message = pnc_exi::iso2::V2gMessage::from_element(&root)?;
    let pnc_exi::iso2::Body::CertificateInstallationRes(res) = &message.body else {
        bail!("the answer is not a CertificateInstallationRes");
    };
    ensure!(
        res.response_code.as_str() == "OK",
        "the EV would hear {}: {answer}",
        res.response_code.as_str()
    );
    let status_info = answer.get("statusInfo").cloned();
    Ok((exi_response, status_info))
}

/// The wrk script: POSTs the installation and counts answers that are not HTTP 200 with
/// the expected `exiResponse` (a negative ISO answer is HTTP 200 too).
fn wrk_script(body: &str, token: &str, expected_exi: &str) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
expected = [==[{expected_exi}]==]

local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, expected, 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format("PNC_REQUESTS %d\n", summary.requests))
  io.write(string.format("PNC_DURATION_US %d\n", summary.duration))
  io.write(string.format("PNC_P50_US %d\n", latency:percentile(50)))
  io.write(string.format("PNC_P99_US %d\n", latency:percentile(99)))
  io.write(string.format("PNC_MAX_US %d\n", latency.max))
  io.write(string.format("PNC_BAD_ANSWERS %d\n", total_bad))
  io.write(string.format("PNC_ERRORS %d\n", e.connect + e.read + e.write + e.status + e.timeout))
end
"#
    )
}

struct Run {
    concurrency: u32,
    requests: u64,
    /// CPU time `pnc serve` used (all its threads, user + system) per answered install:
    /// what the request path costs, even on a machine whose other work skews throughput.
    cpu_ms_per_install: f64,
    installs_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn field(output: &str, name: &str) -> Result<u64> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .ok_or_else(|| anyhow!("wrk printed no {name}:\n{output}"))?
        .trim()
        .parse()
        .with_context(|| format!("{name} in wrk's output"))
}

/// User + system CPU seconds of process `pid` so far (/proc/PID/stat utime and stime).
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); after the name, state is index 0, so they are 11 and 12.
    let ticks: u64 = fields
        .get(11)
        .zip(fields.get(12))
        .map(|(user, system)| {
            Ok::<_, std::num::ParseIntError>(user.parse::<u64>()? + system.parse::<u64>()?)
        })
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))??;
    Ok(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn wrk(url: &str, script: &Path, concurrency: u32, seconds: u64, pid: u32) -> Result<Run> {
    let cpu_before = cpu_seconds(pid)?;
    let threads = concurrency.min(2);
    let mut command = tokio::process::Command::new("wrk");
    command
        .arg(format!("-t{threads}"))
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{seconds}s"))
        .args(["--timeout", "10s", "--latency", "-s"])
        .arg(script)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(seconds + 60), command.output())
        .await
        .map_err(|_| anyhow!("wrk did not finish in time"))?
        .context("running wrk (apt-get install -y wrk)")?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    ensure!(
        output.status.success(),
        "wrk failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let non_2xx = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map(|n| n.trim().parse::<u64>())
        .transpose()?
        .unwrap_or(0);
    let bad = field(&stdout, "PNC_BAD_ANSWERS")?;
    let errors = field(&stdout, "PNC_ERRORS")?;
    ensure!(
        non_2xx == 0 && bad == 0 && errors == 0,
        "failed run at concurrency {concurrency}: {non_2xx} non-2xx, {bad} answers not the expected contract, {errors} socket errors or timeouts\n{stdout}"
    );
    let requests = field(&stdout, "PNC_REQUESTS")?;
    ensure!(requests > 0, "no request completed\n{stdout}");
    let duration_us = field(&stdout, "PNC_DURATION_US")? as f64;
    let cpu_ms_per_install = (cpu_seconds(pid)? - cpu_before) * 1000.0 / requests as f64;
    Ok(Run {
        concurrency,
        requests,
        cpu_ms_per_install,
        installs_per_second: requests as f64 / (duration_us / 1e6),
        p50_ms: field(&stdout, "PNC_P50_US")? as f64 / 1000.0,
        p99_ms: field(&stdout, "PNC_P99_US")? as f64 / 1000.0,
        max_ms: field(&stdout, "PNC_MAX_US")? as f64 / 1000.0,
    })
}

/// `openssl speed -seconds 5 [-multi N] ecdsap256`: P-256 verifications per second.
fn openssl_verify_per_second(processes: usize) -> Result<f64> {
    let mut command = Command::new("openssl");
    command.args(["speed", "-seconds", "5"]);
    if processes > 1 {
        command.args(["-multi", &processes.to_string()]);
    }
    let output = command.arg("ecdsap256").output()?;
    ensure!(output.status.success(), "openssl speed failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  40000.0  13000.0": verify/s is last.
    stdout
        .lines()
        .filter(|line| line.contains("nistp256") && line.contains("bits"))
        .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
        .next_back()
        .ok_or_else(|| anyhow!("no nistp256 line in openssl speed's output:\n{stdout}"))
}

fn machine() -> (usize, String, String) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default();
    (cores, model, openssl)
}

async fn run(options: Options) -> Result<String> {
    let (cores, model, openssl_version) = machine();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let data_dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut server = Server::start(&options.pnc, data_dir.path(), port)?;
    eprintln!(
        "install_load: pnc serve (pid {}) on 127.0.0.1:{port}",
        server.pid()
    );
    let pnc = Pnc {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()?,
        base_url: format!("http://127.0.0.1:{port}"),
        binary: options.pnc.clone(),
        data_dir: data_dir.path().to_path_buf(),
    };
    pnc.wait_healthy(&mut server).await?;
    let admin = pnc.client("admin", &[]).await?;
    let pki = pnc.dev_pki().await?;
    pnc.wait_for_dev_roots(&admin, &pki).await?;
    let oem = pnc.client("oem", &["--wmi", "PNC"]).await?;
    pnc.register_vehicle(&oem, &pki).await?;
    let emsp = pnc.client("emsp", &["--provider-id", "DEPNC"]).await?;
    pnc.generate_contract(&emsp).await?;
    let cpo = pnc.client("cpo", &["--operator-id", "DE*PNC"]).await?;

    let exi = installation_request(&pki)?;
    let body = json!({
        "iso15118SchemaVersion": ISO2_NAMESPACE,
        "action": "Install",
        "exiRequest": STANDARD.encode(&exi),
    })
    .to_string();
    let (exi_response, status_info) = install_once(&pnc, &body, &cpo).await?;
    let script = data_dir.path().join("install.lua");
    std::fs::write(&script, wrk_script(&body, &cpo, &exi_response))?;
    let url = pnc.url(INSTALL_PATH);

    eprintln!("install_load: warming up (3 s at concurrency 16)");
    wrk(&url, &script, 16, 3, server.pid()).await?;
    let mut runs = Vec::new();
    for &concurrency in &options.concurrencies {
        eprintln!(
            "install_load: concurrency {concurrency} for {} s",
            options.duration_seconds
        );
        let run = wrk(
            &url,
            &script,
            concurrency,
            options.duration_seconds,
            server.pid(),
        )
        .await?;
        server.check_alive()?;
        runs.push(run);
    }
    drop(server);

    eprintln!("install_load: openssl speed ecdsap256 (5 s, then 5 s on {cores} processes)");
    let verify_one_core = openssl_verify_per_second(1)?;
    let verify_all_cores = if cores > 1 {
        openssl_verify_per_second(cores)?
    } else {
        verify_one_core
    };
    let ceiling = verify_one_core / VERIFICATIONS_PER_INSTALL;
    let ceiling_all = verify_all_cores / VERIFICATIONS_PER_INSTALL;

    let mut report = String::new();
    let date = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    report.push_str(&format!(
        "- date: {date}\n- machine: {cores} CPUs (nproc), {model}\n- {openssl_version}\n\
         - load average before the run (other work on the machine skews both figures): {}\n\
         - load: wrk, {} s per concurrency, every answer checked (HTTP 200 and the expected positive exiResponse)\n\n",
        load_before.trim(),
        options.duration_seconds
    ));
    report.push_str(&format!(
        "Crypto ceiling (`openssl speed -seconds 5 ecdsap256`): {verify_one_core:.0} verify/s on one core \
         → **{ceiling:.0} installs/s** (÷ {VERIFICATIONS_PER_INSTALL}); all {cores} cores \
         (`-multi {cores}`): {verify_all_cores:.0} verify/s → {ceiling_all:.0} installs/s.\n\n"
    ));
    report.push_str(
        "| concurrency | requests | installs/s | p50 ms | p99 ms | max ms | ÷ ceiling (1 core) | ÷ ceiling (all cores) | pnc CPU ms/install |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in &runs {
        report.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} |\n",
            run.concurrency,
            run.requests,
            run.installs_per_second,
            run.p50_ms,
            run.p99_ms,
            run.max_ms,
            run.installs_per_second / ceiling,
            run.installs_per_second / ceiling_all,
            run.cpu_ms_per_install,
        ));
    }
    let fits = exi_response.len() <= OCPP_201_MAX_EXI_RESPONSE_CHARS;
    report.push_str(&format!(
        "\nexiResponse: {} base64 characters ({} EXI bytes) against OCPP 2.0.1's {OCPP_201_MAX_EXI_RESPONSE_CHARS}: {}; statusInfo: {}\n",
        exi_response.len(),
        STANDARD.decode(&exi_response)?.len(),
        if fits { "fits" } else { "does NOT fit" },
        status_info.map_or("none".to_string(), |info| info.to_string()),
    ));
    let best = runs
        .iter()
        .map(|run| run.installs_per_second)
        .fold(0.0, f64::max);
    if let Some(at_64) = runs.iter().find(|run| run.concurrency == 64) {
        report.push_str(&format!(
            "\nGoal (≥ half the ceiling, p99 < 50 ms at concurrency 64): best {best:.0} installs/s = {:.2} × ceiling ({}), p99 at 64 = {:.2} ms ({})\n",
            best / ceiling,
            if best / ceiling >= 0.5 { "met" } else { "missed" },
            at_64.p99_ms,
            if at_64.p99_ms < 50.0 { "met" } else { "missed" },
        ));
    }
    Ok(report)
}

fn main() -> std::process::ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("install_load: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let out = options.out.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Ctrl-C drops the run, and with it the server and wrk.
    let result = runtime.block_on(async {
        tokio::select! {
            result = run(options) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    match result {
        Ok(report) => {
            println!("{report}");
            let written = out.map_or(Ok(()), |out| {
                std::fs::write(&out, &report)
                    .map_err(|error| format!("writing {}: {error}", out.display()))
            });
            if let Err(message) = written {
                eprintln!("install_load: {message}");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("install_load: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
