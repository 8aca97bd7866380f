//! A real OCSP upstream for the tests: `openssl ocsp` as a responder on loopback.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Starts `openssl ocsp` in `dir` on `port` for the CA in `ca_pem`, answering from
/// `index.txt` and signing with `signer_pem`/`signer_key`, nextUpdate one minute on.
/// Returns once the port listens.
pub fn start_responder(
    dir: &Path,
    port: u16,
    ca_pem: &str,
    signer_pem: &str,
    signer_key: &str,
) -> Responder {
    let responder = Responder(
        Command::new("openssl")
            .current_dir(dir)
            .args(["ocsp", "-index", "index.txt", "-port", &port.to_string()])
            .args(["-CA", ca_pem, "-rsigner", signer_pem, "-rkey", signer_key])
            .args(["-nmin", "1", "-ignore_err"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl ocsp"),
    );
    // Probing with a connection would wedge the single-threaded responder (it waits for a
    // request on it), so look for the listening socket instead.
    let needle = format!(":{port:04X} ");
    for _ in 0..100 {
        let listening = ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
            std::fs::read_to_string(table).is_ok_and(|text| {
                text.lines().any(|line| {
                    line.contains(&needle) && line.split_whitespace().nth(3) == Some("0A")
                })
            })
        });
        if listening {
            return responder;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("openssl ocsp did not start");
}

/// The responder process, stopped when dropped (also when a test fails half-way).
pub struct Responder(Child);

impl Responder {
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop();
    }
}
