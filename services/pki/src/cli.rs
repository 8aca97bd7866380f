//! `pnc pki …`: the operator's entry points. The `pnc` binary flattens [`PkiArgs`] into its
//! `pki` subcommand and calls [`run`].
//!
//! - `pnc pki init --dev --out DIR [--kek-file FILE] [--ocsp-base-url URL] [--write-test-keys]`
//! - `pnc pki check [--profile P] FILE…` (PEM or DER; exit 0 when every certificate passes)

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::certificate::Certificate;
use crate::dev::{DEFAULT_KEK_FILE, DevPki, DevPkiOptions, KEYS_DIR, PlaintextTestKeys};
use crate::keystore::{Kek, KeyStore};
use crate::profile::{self, CheckReport, Profile};

/// `pnc pki`.
#[derive(Debug, clap::Args)]
pub struct PkiArgs {
    #[command(subcommand)]
    pub command: PkiCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PkiCommand {
    /// Create a PKI (today: the development hierarchies for ISO 15118-2 and -20).
    Init(InitArgs),
    /// Check certificates against their ISO 15118 profile.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Generate the development PKI (the only kind `init` makes).
    #[arg(long)]
    pub dev: bool,
    /// Output directory (certificates, manifest, encrypted keys in `keys/`).
    #[arg(long)]
    pub out: PathBuf,
    /// Key-encryption key file (32 bytes; created with mode 0600 if absent). Default: OUT/kek.
    #[arg(long)]
    pub kek_file: Option<PathBuf>,
    /// Base URL written as AIA OCSP into every non-root certificate.
    #[arg(long, default_value = "http://127.0.0.1:8080/ocsp")]
    pub ocsp_base_url: String,
    /// Base URL for CRL distribution points (`{base}/{issuer}.crl`).
    #[arg(long, default_value = "http://127.0.0.1:8080/crl")]
    pub crl_base_url: String,
    /// Also write the SECC and example OEM provisioning private keys as plaintext PKCS#8
    /// (`secc-key.pem`, `oem-provisioning-key.pem`, mode 0600): test material for playing the
    /// charger and the car. Never use for anything else.
    #[arg(long)]
    pub write_test_keys: bool,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Profile to check against (inferred from each certificate when absent). One of:
    /// v2g-root, cpo-sub-ca-1, cpo-sub-ca-2, secc, cps-sub-ca-1, cps-sub-ca-2, cps-leaf, mo-root,
    /// mo-sub-ca-1, mo-sub-ca-2, contract, oem-root, oem-sub-ca-1, oem-sub-ca-2,
    /// oem-provisioning, charging-station-ca, charging-station, ocsp-signer.
    #[arg(long)]
    pub profile: Option<Profile>,
    /// Certificate files, PEM (one or more certificates) or DER.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `pnc pki …`, printing to stdout/stderr.
pub fn run(args: PkiArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] with explicit output streams (tests).
pub fn run_with(args: PkiArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    match args.command {
        PkiCommand::Init(init) => run_init(init, out, err),
        PkiCommand::Check(check) => run_check(check, out, err),
    }
}

fn run_init(args: InitArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    if !args.dev {
        let _ = writeln!(
            err,
            "pnc pki init: only --dev is supported; production CAs belong in an HSM-backed setup"
        );
        return ExitCode::from(2);
    }
    let kek_path = args
        .kek_file
        .clone()
        .unwrap_or_else(|| args.out.join(DEFAULT_KEK_FILE));
    let result = (|| -> Result<DevPki, String> {
        if args.out.join(crate::dev::MANIFEST_FILE).exists() {
            return Err(format!(
                "{} already holds a dev pki; remove it first",
                args.out.display()
            ));
        }
        let kek = Kek::load_or_create(&kek_path).map_err(|e| e.to_string())?;
        let key_store = KeyStore::open(args.out.join(KEYS_DIR), kek).map_err(|e| e.to_string())?;
        let options = DevPkiOptions {
            ocsp_base_url: args.ocsp_base_url.clone(),
            crl_base_url: Some(args.crl_base_url.trim_end_matches('/').to_owned()),
            ..DevPkiOptions::default()
        };
        let pki = DevPki::generate(&options).map_err(|e| e.to_string())?;
        let plaintext = if args.write_test_keys {
            PlaintextTestKeys::Write
        } else {
            PlaintextTestKeys::No
        };
        pki.write_out(&args.out, &key_store, plaintext)
            .map_err(|e| e.to_string())?;
        Ok(pki)
    })();
    match result {
        Ok(pki) => {
            let _ = writeln!(out, "wrote the dev pki to {}", args.out.display());
            for which in crate::dev::DevCert::ALL {
                let certificate = pki.certificate(which);
                let _ = writeln!(
                    out,
                    "  {:<22} {}  (until {})",
                    format!("{}.pem/.der", which.file_stem()),
                    certificate.subject(),
                    certificate.not_after().date()
                );
            }
            let _ = writeln!(out, "  ocsp-<ca>.pem/.der     delegated OCSP signer per CA");
            let _ = writeln!(
                out,
                "private keys: encrypted in {} under the kek {}",
                args.out.join(KEYS_DIR).display(),
                kek_path.display()
            );
            if args.write_test_keys {
                let _ = writeln!(
                    out,
                    "plaintext test keys (dev only, mode 0600): secc-key.pem, oem-provisioning-key.pem"
                );
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            let _ = writeln!(err, "pnc pki init: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Checks every certificate in `bytes` (PEM with one or more certificates, or DER).
pub fn check_bytes(bytes: &[u8], profile: Option<Profile>) -> Result<Vec<CheckReport>, String> {
    let certificates = if bytes.first() == Some(&0x30) {
        vec![Certificate::from_der(bytes).map_err(|e| e.to_string())?]
    } else {
        let all = Certificate::all_from_pem(bytes).map_err(|e| e.to_string())?;
        if all.is_empty() {
            return Err("no certificate found (expected PEM or DER)".into());
        }
        all
    };
    certificates
        .iter()
        .map(|certificate| {
            profile::check(certificate, profile).ok_or_else(|| {
                format!(
                    "cannot infer the profile of {}; pass --profile",
                    certificate.subject()
                )
            })
        })
        .collect()
}

fn run_check(args: CheckArgs, out: &mut dyn Write, _err: &mut dyn Write) -> ExitCode {
    let mut all_passed = true;
    for file in &args.files {
        let name = file.display();
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(error) => {
                all_passed = false;
                let _ = writeln!(out, "{name}: error [unreadable]: {error}");
                continue;
            }
        };
        let reports = match check_bytes(&bytes, args.profile) {
            Ok(reports) => reports,
            Err(message) => {
                all_passed = false;
                let _ = writeln!(out, "{name}: error [unparseable]: {message}");
                continue;
            }
        };
        let many = reports.len() > 1;
        for (index, report) in reports.iter().enumerate() {
            let label = if many {
                format!("{name}#{index}")
            } else {
                name.to_string()
            };
            let how = if report.inferred { "inferred" } else { "given" };
            let verdict = if report.passed() { "PASS" } else { "FAIL" };
            let _ = writeln!(out, "{label}: {verdict} profile {} ({how})", report.profile);
            for finding in &report.findings {
                let _ = writeln!(out, "{label}: {finding}");
            }
            all_passed &= report.passed();
        }
    }
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
