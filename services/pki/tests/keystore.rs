//! The encrypted key store: round trip, wrong KEK, tampering, renamed files.

use std::os::unix::fs::PermissionsExt;

use pnc_pki::keystore::KeyStoreError;
use pnc_pki::{Kek, KeyStore, SignatureAlgorithm, Signer};

#[test]
fn round_trip_for_both_curves() {
    let directory = tempfile::tempdir().unwrap();
    let store = KeyStore::open(directory.path(), Kek::from_bytes([1; 32])).unwrap();
    for (id, algorithm) in [
        ("p256", SignatureAlgorithm::EcdsaP256Sha256),
        ("p521", SignatureAlgorithm::EcdsaP521Sha512),
    ] {
        let generated = store.generate(id, algorithm).unwrap();
        let loaded = store.load(id).unwrap();
        assert_eq!(
            generated.public_key_spki_der(),
            loaded.public_key_spki_der()
        );
        assert_eq!(loaded.algorithm(), algorithm);
        let mode = std::fs::metadata(directory.path().join(format!("{id}.key")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Never overwrites.
        assert!(matches!(
            store.generate(id, algorithm),
            Err(KeyStoreError::AlreadyExists { .. })
        ));
    }
}

#[test]
fn wrong_kek_fails_clearly() {
    let directory = tempfile::tempdir().unwrap();
    KeyStore::open(directory.path(), Kek::from_bytes([1; 32]))
        .unwrap()
        .generate("k", SignatureAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let other = KeyStore::open(directory.path(), Kek::from_bytes([2; 32])).unwrap();
    let error = other.load("k").unwrap_err();
    assert!(matches!(error, KeyStoreError::WrongKek { .. }), "{error}");
    assert!(error.to_string().contains("wrong key-encryption key"));
}

#[test]
fn tampered_and_renamed_files_fail() {
    let directory = tempfile::tempdir().unwrap();
    let store = KeyStore::open(directory.path(), Kek::from_bytes([1; 32])).unwrap();
    store
        .generate("a", SignatureAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let path = directory.path().join("a.key");
    let original = std::fs::read(&path).unwrap();

    for index in [25, original.len() - 1] {
        let mut tampered = original.clone();
        tampered[index] ^= 0x01;
        std::fs::write(&path, &tampered).unwrap();
        assert!(matches!(
            store.load("a"),
            Err(KeyStoreError::Tampered { .. })
        ));
    }
    let mut bad_version = original.clone();
    bad_version[0] = 9;
    std::fs::write(&path, &bad_version).unwrap();
    assert!(matches!(
        store.load("a"),
        Err(KeyStoreError::UnsupportedVersion { .. })
    ));
    std::fs::write(&path, &original[..10]).unwrap();
    assert!(matches!(
        store.load("a"),
        Err(KeyStoreError::Truncated { .. })
    ));

    // A valid file under another key's name does not open (the key id is in the AAD).
    std::fs::write(directory.path().join("b.key"), &original).unwrap();
    assert!(matches!(
        store.load("b"),
        Err(KeyStoreError::Tampered { .. })
    ));
    assert!(matches!(
        store.load("../a"),
        Err(KeyStoreError::BadKeyId(_))
    ));
}

#[test]
fn kek_file_is_created_with_mode_0600_and_reloaded() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("sub/kek");
    let store = KeyStore::open(
        directory.path().join("keys"),
        Kek::load_or_create(&path).unwrap(),
    )
    .unwrap();
    store
        .generate("x", SignatureAlgorithm::EcdsaP256Sha256)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read(&path).unwrap().len(), 32);
    let again = KeyStore::open(
        directory.path().join("keys"),
        Kek::load_or_create(&path).unwrap(),
    )
    .unwrap();
    again.load("x").unwrap();
    std::fs::write(directory.path().join("short"), [0u8; 5]).unwrap();
    assert!(Kek::load(&directory.path().join("short")).is_err());
    assert_eq!(format!("{:?}", Kek::from_bytes([9; 32])), "Kek(..)");
}
