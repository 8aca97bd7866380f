//! registry-bench: the registry at scale on PostgreSQL (a benchmark, not a test).
//!
//! 1. Seeds `--count` provisioning certificates and as many contracts (with one signed
//!    contract data each) into the registry schema with COPY: synthetic identifiers
//!    (PCID `BNC` + 14 digits, eMAID `DEBNCC` + 8 digits) over real DER from a dev PKI.
//! 2. Starts the registry service in-process (real gRPC over mTLS on loopback) and drives
//!    its look-ups by PCID (`Contracts.GetProvisioningCertificate`) and by eMAID
//!    (`Contracts.ListContracts`) at concurrency 1, 16 and 64, bounded in requests and time.
//! 3. Measures, in the same run, the floor: a raw `SELECT` by primary key through a plain
//!    PostgreSQL driver, and pgbench running the same statement.
//!
//! `cargo run --release -p pnc-registry --bin registry-bench -- --database-url postgres://…`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use pnc_common::Component;
use pnc_common::config::Config;
use pnc_common::db::StorageLocation;
use pnc_common::runtime::ComponentContext;
use pnc_common::tls::InternalCa;
use pnc_pki::dev::{DevCert, DevPki, DevPkiOptions};
use pnc_proto::common::v1::Certificate as CertificateMessage;
use pnc_proto::registry::v1::contracts_client::ContractsClient;
use pnc_proto::registry::v1::{
    Contract, ContractMode, GetProvisioningCertificateRequest, ListContractsRequest,
    SignedContractData, SignedReference, list_contracts_request,
};
use prost::Message;
use rand::Rng;
use sha2::Digest;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Seeds the registry at scale and measures its look-ups")]
struct Args {
    /// A PostgreSQL database the benchmark may fill (the registry schema in it).
    #[arg(long, env = "PNC_BENCH_DATABASE_URL")]
    database_url: String,
    /// Vehicles and contracts to seed.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Requests per (operation, concurrency).
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Time cap per (operation, concurrency).
    #[arg(long, default_value_t = 30)]
    max_seconds: u64,
    /// Keep what is in the database (it must hold --count rows).
    #[arg(long)]
    skip_seed: bool,
}

const LEVELS: [usize; 3] = [1, 16, 64];
const COPY_BATCH: u64 = 20_000;
/// pgbench clients are capped so the run fits PostgreSQL's default max_connections (100).
const PGBENCH_MAX_CLIENTS: usize = 40;

fn pcid_of(index: u64) -> String {
    format!("BNC{index:014}")
}

fn emaid_of(index: u64) -> String {
    format!("DEBNCC{index:08}")
}

/// /proc/loadavg's first three fields (other engineers may be building).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn bytea(bytes: &[u8]) -> String {
    format!("\\\\x{}", hex::encode(bytes))
}

#[derive(Debug, Clone, Copy)]
struct Summary {
    requests: usize,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

fn summarise(mut latencies: Vec<u64>, elapsed: Duration) -> Summary {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Summary {
        requests: latencies.len(),
        seconds: elapsed.as_secs_f64(),
        p50_us: at(0.50),
        p99_us: at(0.99),
        max_us: latencies.last().copied().unwrap_or(0),
    }
}

fn print_row(operation: &str, concurrency: usize, summary: Summary) {
    println!(
        "| {operation} | {concurrency} | {} | {:.0} | {:.3} | {:.3} | {:.3} |",
        summary.requests,
        summary.requests as f64 / summary.seconds.max(1e-9),
        summary.p50_us as f64 / 1000.0,
        summary.p99_us as f64 / 1000.0,
        summary.max_us as f64 / 1000.0,
    );
}

/// Runs `operation(index)` from `concurrency` tasks until `requests` are done or time is up.
async fn drive<F, Fut>(
    concurrency: usize,
    requests: u64,
    max: Duration,
    count: u64,
    operation: F,
) -> Summary
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let started = Instant::now();
    let deadline = started + max;
    let per_task = requests / concurrency as u64;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let operation = operation.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task as usize);
            for _ in 0..per_task {
                if Instant::now() > deadline {
                    break;
                }
                let index = rand::thread_rng().gen_range(0..count);
                let begun = Instant::now();
                if let Err(error) = operation(index).await {
                    eprintln!("request failed: {error:#}");
                    continue;
                }
                latencies.push(begun.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    summarise(all, started.elapsed())
}

async fn seed(args: &Args, pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let pki = DevPki::generate(&DevPkiOptions::default())?;
    let leaf = pki.certificate(DevCert::OemProvisioning).der().to_vec();
    let sub_ca2 = pki.certificate(DevCert::OemSubCa2).der().to_vec();
    let sub_ca1 = pki.certificate(DevCert::OemSubCa1).der().to_vec();
    let root = pki.certificate(DevCert::OemRoot).der().to_vec();
    let root_fingerprint = hex::encode_upper(sha2::Sha256::digest(&root));
    let v2g_fingerprint = hex::encode_upper(sha2::Sha256::digest(
        pki.certificate(DevCert::V2gRoot).der(),
    ));
    let contract_leaf = pki.issue_contract(
        "DEBNCC00000000",
        pki.certificate(DevCert::OemProvisioning)
            .public_key_spki_der(),
        time::Duration::days(365),
    )?;
    let contract_chain: Vec<CertificateMessage> = [
        contract_leaf.der(),
        pki.certificate(DevCert::MoSubCa2).der(),
        pki.certificate(DevCert::MoSubCa1).der(),
    ]
    .into_iter()
    .map(|der| CertificateMessage { der: der.to_vec() })
    .collect();
    let cps_chain: Vec<CertificateMessage> =
        [DevCert::CpsLeaf, DevCert::CpsSubCa2, DevCert::CpsSubCa1]
            .into_iter()
            .map(|which| CertificateMessage {
                der: pki.certificate(which).der().to_vec(),
            })
            .collect();
    let now = pnc_common::db::unix_now();
    let not_after = contract_leaf.not_after().unix_timestamp();
    let not_before = contract_leaf.not_before().unix_timestamp();
    let fingerprint = |der: &[u8]| hex::encode_upper(sha2::Sha256::digest(der));
    let sub_ca2_fingerprint = fingerprint(&sub_ca2);
    let sub_ca1_fingerprint = fingerprint(&sub_ca1);
    let leaf_fingerprint = fingerprint(&leaf).to_ascii_lowercase();
    let (root_subject, root_serial, root_key_identifier) =
        pnc_registry::pcp::root_view(&pnc_pki::Certificate::from_der(&root)?);
    let contract_sub_ca_fingerprints = contract_chain[1..]
        .iter()
        .map(|certificate| fingerprint(&certificate.der))
        .collect::<Vec<_>>()
        .join(" ");
    let cps_fingerprints = cps_chain
        .iter()
        .map(|certificate| fingerprint(&certificate.der))
        .collect::<Vec<_>>()
        .join(" ");
    let v2g_root_dn = pnc_pki::Certificate::from_der(&cps_chain[2].der)?
        .issuer()
        .to_string();

    let mut connection = pool.acquire().await?;
    sqlx::query(
        "TRUNCATE provisioning_certificates, contracts, signed_contract_data, oem_sub_cas, \
         ca_certificates",
    )
    .execute(&mut *connection)
    .await?;
    // The shared certificates, once (compact rows reference them by fingerprint).
    let shared = [&sub_ca2, &sub_ca1, &root]
        .into_iter()
        .cloned()
        .chain(contract_chain[1..].iter().map(|c| c.der.clone()))
        .chain(cps_chain.iter().map(|c| c.der.clone()));
    for der in shared {
        sqlx::query(
            "INSERT INTO ca_certificates (fingerprint, der, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (fingerprint) DO NOTHING",
        )
        .bind(fingerprint(&der))
        .bind(&der)
        .bind(now)
        .execute(&mut *connection)
        .await?;
    }
    let contract_leaf_only = contract_chain[..1].to_vec();
    let started = Instant::now();
    let mut index = 0;
    while index < args.count {
        let end = (index + COPY_BATCH).min(args.count);
        let mut vehicles = String::new();
        let mut contracts = String::new();
        let mut signed = String::new();
        for row in index..end {
            let pcid = pcid_of(row);
            let emaid = emaid_of(row);
            vehicles.push_str(&format!(
                "{pcid}\t{pcid}\tBNC\t{}\t\\\\x\t\\\\x\t{root_fingerprint}\t\\\\x\turn:iso:15118:2:2013:MsgDef\t[]\t\t{not_after}\tbench\t{now}\t{now}\t1\t{sub_ca2_fingerprint}\t{sub_ca1_fingerprint}\t{leaf_fingerprint}\t{root_subject}\t{root_serial}\t{root_key_identifier}\n",
                bytea(&leaf),
            ));
            let contract = Contract {
                emaid: emaid.clone(),
                pcid: pcid.clone(),
                mode: ContractMode::Generated as i32,
                contract_chain: contract_leaf_only.clone(),
                contract_begins: now,
                contract_ends: now + 365 * 86_400,
                ..Contract::default()
            };
            contracts.push_str(&format!(
                "{pcid}\t{emaid}\t{pcid}\t{emaid}\tDEBNC\t1\t0\t{}\tbench\t{now}\t{now}\t1\t{contract_sub_ca_fingerprints}\t{not_before}\t{not_after}\n",
                bytea(&contract.encode_to_vec())
            ));
            let mut random = [0u8; 177];
            rand::thread_rng().fill(&mut random[..]);
            let data = SignedContractData {
                v2g_root_fingerprint: v2g_fingerprint.clone(),
                cps_chain: Vec::new(),
                contract_chain: contract_leaf_only.clone(),
                encrypted_private_key: random[..48].to_vec(),
                dh_public_key: random[48..113].to_vec(),
                emaid: emaid.clone(),
                contract_chain_id: "id1".into(),
                encrypted_private_key_id: "id2".into(),
                dh_public_key_id: "id3".into(),
                emaid_id: "id4".into(),
                references: ["#id1", "#id2", "#id3", "#id4"]
                    .into_iter()
                    .map(|uri| SignedReference {
                        uri: uri.into(),
                        sha256_digest: random[113..145].to_vec(),
                    })
                    .collect(),
                signature_value: random[113..177].to_vec(),
                v2g_root_distinguished_name: String::new(),
                schema_namespace: String::new(),
            };
            signed.push_str(&format!(
                "{pcid}\t{emaid}\t{v2g_fingerprint}\t{}\t{now}\t1\t{cps_fingerprints}\t{contract_sub_ca_fingerprints}\t{v2g_root_dn}\n",
                bytea(&data.encode_to_vec())
            ));
        }
        for (table, columns, text) in [
            (
                "provisioning_certificates",
                "pcid_key, pcid, wmi, leaf_der, sub_ca2_der, sub_ca1_der, oem_root_fingerprint, \
                 oem_root_der, xsd_msg_def_namespace, v2g_root_akis, previous_pcid, not_after, \
                 created_by, created_at, updated_at, format, sub_ca2_fingerprint, \
                 sub_ca1_fingerprint, leaf_fingerprint, root_subject, root_serial, \
                 root_key_identifier",
                vehicles,
            ),
            (
                "contracts",
                "pcid_key, emaid_key, pcid, emaid, provider_id, is_default, cancelled, \
                 contract_pb, created_by, created_at, updated_at, format, chain_fingerprints, \
                 certificate_not_before, certificate_not_after",
                contracts,
            ),
            (
                "signed_contract_data",
                "pcid_key, emaid_key, v2g_root_fingerprint, signed_data_pb, created_at, format, \
                 cps_chain_fingerprints, contract_chain_fingerprints, v2g_root_dn",
                signed,
            ),
        ] {
            let mut copy = connection
                .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
                .await?;
            copy.send(text.into_bytes()).await?;
            copy.finish().await?;
        }
        index = end;
        if index % 200_000 == 0 || index == args.count {
            eprintln!(
                "seeded {index} vehicles and contracts in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    sqlx::query("ANALYZE").execute(&mut *connection).await?;
    println!(
        "seeded {} vehicles + {} contracts + {} signed contract data in {:.0} s",
        args.count,
        args.count,
        args.count,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// pgbench with the same primary-key SELECT, p99 from its per-transaction log.
fn pgbench(url: &str, count: u64, concurrency: usize, seconds: u64) -> anyhow::Result<Summary> {
    let directory = std::env::temp_dir().join(format!("registry-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&directory)?;
    let script = directory.join("select.sql");
    std::fs::write(
        &script,
        format!(
            "\\set id random(0, {})\nSELECT pcid FROM registry.provisioning_certificates WHERE pcid_key = 'BNC' || lpad(:id::text, 14, '0');\n",
            count - 1
        ),
    )?;
    let output = std::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-l", "--log-prefix"])
        .arg(directory.join("log"))
        .args([
            "-c",
            &concurrency.min(PGBENCH_MAX_CLIENTS).to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(url)
        .current_dir(&directory)
        .output()?;
    if !output.status.success() {
        anyhow::bail!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(&directory)? {
        let path: PathBuf = entry?.path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("log"))
        {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Some(latency) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                    latencies.push(latency);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&directory);
    Ok(summarise(latencies, Duration::from_secs(seconds)))
}

/// A 16-connection pool on the registry schema, like the registry's own.
async fn floor_pool(database_url: &str, test_before_acquire: bool) -> anyhow::Result<sqlx::PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .test_before_acquire(test_before_acquire)
        .after_connect(|connection, _| {
            Box::pin(async move {
                sqlx::Executor::execute(connection, "SET search_path TO registry").await?;
                Ok(())
            })
        })
        .connect(database_url)
        .await?)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let storage = StorageLocation::Postgres {
        url: args.database_url.clone(),
    };
    // Creates the schema and applies the registry's migrations.
    pnc_registry::open_database(&storage).await?;
    // As many connections as the registry's own pool, so the floor is comparable (and
    // registry + this pool + pgbench stay under PostgreSQL's default max_connections).
    // Configured like the registry's pool (no ping before each acquire).
    let pool = floor_pool(&args.database_url, false).await?;
    // sqlx's default: a ping round trip before every acquire, to show what that costs.
    let pinging_pool = floor_pool(&args.database_url, true).await?;
    if !args.skip_seed {
        seed(&args, &pool).await?;
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contracts")
        .fetch_one(&pool)
        .await?;
    let vehicles: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM provisioning_certificates")
        .fetch_one(&pool)
        .await?;
    println!("database holds {vehicles} provisioning certificates and {rows} contracts");
    let count = args.count.min(rows as u64).min(vehicles as u64).max(1);

    // The registry, as pnc runs it, on loopback with mTLS.
    let ca_dir = std::env::temp_dir().join(format!("registry-bench-ca-{}", uuid::Uuid::new_v4()));
    let ca = InternalCa::load_or_create(&ca_dir)?;
    let config = Config {
        database_url: Some(args.database_url.clone()),
        ..Config::default()
    };
    let shutdown = CancellationToken::new();
    let context = ComponentContext {
        component: Component::Registry,
        config: Arc::new(config.clone()),
        tls: ca.issue(Component::Registry)?,
        storage: storage.clone(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown: shutdown.clone(),
        validity_clock: pnc_common::runtime::ValidityClock::system(),
        in_process: None,
    };
    let running = pnc_registry::start(context).await?;
    let channel = pnc_common::grpc::connect(
        &running.url(),
        &ca.issue(Component::Provisioning)?,
        &config.grpc,
    )?;
    let max = Duration::from_secs(args.max_seconds);

    println!("load average before the load run: {}", load_average());
    println!();
    println!("| operation | concurrency | requests | req/s | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for concurrency in LEVELS {
        let client = ContractsClient::new(channel.clone());
        let by_pcid = drive(concurrency, args.requests, max, count, move |index| {
            let mut client = client.clone();
            async move {
                client
                    .get_provisioning_certificate(GetProvisioningCertificateRequest {
                        pcid: pcid_of(index),
                    })
                    .await?;
                Ok(())
            }
        })
        .await;
        print_row(
            "gRPC GetProvisioningCertificate (by PCID)",
            concurrency,
            by_pcid,
        );

        let client = ContractsClient::new(channel.clone());
        let by_emaid = drive(concurrency, args.requests, max, count, move |index| {
            let mut client = client.clone();
            async move {
                let answer = client
                    .list_contracts(ListContractsRequest {
                        selector: Some(list_contracts_request::Selector::Emaid(emaid_of(index))),
                        v2g_root_fingerprint: String::new(),
                    })
                    .await?
                    .into_inner();
                anyhow::ensure!(answer.contracts.len() == 1, "one contract per eMAID");
                Ok(())
            }
        })
        .await;
        print_row("gRPC ListContracts (by eMAID)", concurrency, by_emaid);

        let raw_pool = pool.clone();
        let raw = drive(concurrency, args.requests, max, count, move |index| {
            let pool = raw_pool.clone();
            async move {
                let _: Vec<u8> = sqlx::query_scalar(
                    "SELECT leaf_der FROM provisioning_certificates WHERE pcid_key = $1",
                )
                .bind(pcid_of(index))
                .fetch_one(&pool)
                .await?;
                Ok(())
            }
        })
        .await;
        print_row(
            "raw SELECT by primary key (sqlx, no gRPC)",
            concurrency,
            raw,
        );

        let raw_pool = pinging_pool.clone();
        let pinged = drive(concurrency, args.requests, max, count, move |index| {
            let pool = raw_pool.clone();
            async move {
                let _: Vec<u8> = sqlx::query_scalar(
                    "SELECT leaf_der FROM provisioning_certificates WHERE pcid_key = $1",
                )
                .bind(pcid_of(index))
                .fetch_one(&pool)
                .await?;
                Ok(())
            }
        })
        .await;
        print_row(
            "raw SELECT, sqlx default ping before acquire",
            concurrency,
            pinged,
        );

        match pgbench(
            &args.database_url,
            count,
            concurrency,
            args.max_seconds.clamp(1, 10),
        ) {
            Ok(summary) => print_row("pgbench SELECT by primary key", concurrency, summary),
            Err(error) => eprintln!("pgbench not measured: {error:#}"),
        }
        eprintln!(
            "load average after concurrency {concurrency}: {}",
            load_average()
        );
    }
    shutdown.cancel();
    let _ = running.wait().await;
    let _ = std::fs::remove_dir_all(&ca_dir);
    Ok(())
}
