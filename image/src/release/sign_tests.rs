use super::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (install the Debian package openssl)")
}

#[test]
fn keygen_writes_a_private_pkcs8_and_a_pem_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("release");
    let (private, public, key) = generate(&prefix).unwrap();
    assert_eq!(private, dir.path().join("release.pk8"));
    let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(PublicKey::read(&public).unwrap(), key);
    assert_eq!(SigningKey::read(&private).unwrap().public(), key);
    assert!(
        dir.path().read_dir().unwrap().count() == 2,
        "no temporary files left"
    );

    // OpenSSL reads our private key and derives the same public key.
    let out = openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), key.to_pem());

    let err = generate(&prefix).unwrap_err().to_string();
    assert!(err.contains("release.pk8 exists already"), "{err}");
}

#[test]
fn signatures_are_deterministic_and_openssl_verifies_them() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public, key) = generate(&dir.path().join("k")).unwrap();
    let signer = SigningKey::read(&private).unwrap();
    let message = b"{\"name\": \"berth\"}\n";
    let sig = signer.sign(message);
    assert_eq!(sig.len(), SIGNATURE_LEN);
    assert_eq!(sig, signer.sign(message));
    assert!(key.verifies(message, &sig));
    assert!(!key.verifies(b"{\"name\": \"other\"}\n", &sig));

    let msg = dir.path().join("manifest.json");
    let sig_path = dir.path().join("manifest.json.sig");
    fs::write(&msg, message).unwrap();
    fs::write(&sig_path, &sig).unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let out = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        &p(&public),
        "-rawin",
        "-in",
        &p(&msg),
        "-sigfile",
        &p(&sig_path),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openssl_keys_work_and_wrong_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ossl.pem");
    let out = openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        pem.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let key = SigningKey::read(&pem).unwrap();
    let pub_path = dir.path().join("ossl.pub");
    let out = openssl(&[
        "pkey",
        "-in",
        pem.to_str().unwrap(),
        "-pubout",
        "-out",
        pub_path.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(PublicKey::read(&pub_path).unwrap(), key.public());

    // A public key given as the private key, an RSA key, and junk.
    let err = SigningKey::read(&pub_path).unwrap_err().to_string();
    assert!(err.contains("is not an Ed25519 private key"), "{err}");
    let rsa = dir.path().join("rsa.pem");
    let out = openssl(&[
        "genpkey",
        "-algorithm",
        "rsa",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        rsa.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let err = SigningKey::read(&rsa).unwrap_err().to_string();
    assert!(
        err.contains("rsa.pem is not an Ed25519 private key"),
        "{err}"
    );
    let rsa_pub = dir.path().join("rsa.pub");
    openssl(&[
        "pkey",
        "-in",
        rsa.to_str().unwrap(),
        "-pubout",
        "-out",
        rsa_pub.to_str().unwrap(),
    ]);
    let err = PublicKey::read(&rsa_pub).unwrap_err().to_string();
    assert!(err.contains("not Ed25519"), "{err}");
    let err = PublicKey::read(&dir.path().join("missing.pub"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read the key") && err.contains("missing.pub"),
        "{err}"
    );
}
