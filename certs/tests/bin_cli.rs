//! The `volops-certs` binary: happy path writes the three files, bad input gives one stderr
//! line and exit code 2.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_volops-certs"))
        .args(args)
        .output()
        .unwrap()
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
}

#[test]
fn writes_ca_cert_and_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        "--out",
        out_dir.to_str().unwrap(),
        "--dns",
        "localhost,svc.ns.svc",
        "--ip",
        "127.0.0.1",
        "--days",
        "3",
    ]);
    assert!(out.status.success(), "{out:?}");
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        let text = std::fs::read_to_string(out_dir.join(f)).unwrap();
        assert!(text.starts_with("-----BEGIN"), "{f}: {text}");
    }
    let mode = std::fs::metadata(out_dir.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn no_names_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["--out", dir.path().to_str().unwrap()]);
    assert_one_line_error(&out, "at least one DNS name");
    assert!(!dir.path().join("ca.crt").exists());
}

#[test]
fn existing_files_need_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(run(&["--out", d, "--dns", "a"]).status.success());
    let before = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
    let out = run(&["--out", d, "--dns", "a"]);
    assert_one_line_error(&out, "already exists");
    assert_eq!(
        before,
        std::fs::read_to_string(dir.path().join("tls.crt")).unwrap()
    );
    let out = run(&["--out", d, "--dns", "a", "--force"]);
    assert!(out.status.success(), "{out:?}");
    assert_ne!(
        before,
        std::fs::read_to_string(dir.path().join("tls.crt")).unwrap()
    );
}

#[test]
fn unwritable_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where a directory is expected cannot be written into, even as root.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let target = blocker.join("sub");
    let out = run(&["--out", target.to_str().unwrap(), "--dns", "a"]);
    assert_one_line_error(&out, "writing");
}

#[test]
fn bad_ip_and_bad_days_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_one_line_error(&run(&["--out", d, "--dns", "a", "--ip", "nope"]), "nope");
    assert_one_line_error(&run(&["--out", d, "--dns", "a", "--days", "0"]), "one day");
}
