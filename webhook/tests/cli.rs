//! The binary's command-line contract (README.md, "Configuration").

use std::process::Command;

#[test]
fn help_lists_the_contract_flags_and_missing_cert_flags_fail() {
    let bin = env!("CARGO_BIN_EXE_volops-webhook");
    let out = Command::new(bin).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--tls-cert",
        "--tls-key",
        "--listen",
        "--probe-listen",
        "--log-format",
        "--other-types",
        "--volume-expansion-owner",
        "--controller-username",
        "--direct-growth",
        "--metrics-listen",
        "--client-ca",
        "--header-read-timeout",
        "--idle-timeout",
        "--request-timeout",
        "--max-connections",
        "--max-body-bytes",
        "--max-body-memory",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(
        help.contains("0.0.0.0:8443") && help.contains("0.0.0.0:8080") && help.contains("0.0.0.0:9090"),
        "{help}"
    );
    assert!(
        help.contains("system:serviceaccount:volops-system:volops-controller")
            && help.contains("within-policy"),
        "{help}"
    );
    let out = Command::new(bin)
        .env_remove("VOLOPS_TLS_CERT")
        .env_remove("VOLOPS_TLS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
    // Limits are checked before anything starts.
    let out = Command::new(bin)
        .args(["--tls-cert", "c", "--tls-key", "k", "--max-body-bytes", "8MB"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--max-body-bytes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The old switch is still accepted (it means --other-types pass); a bad value is refused.
    let out = Command::new(bin)
        .args([
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--pass-through-other-types",
            "--max-body-bytes",
            "8MB",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--max-body-bytes") && !stderr.contains("unexpected argument"),
        "{stderr}"
    );
    let out = Command::new(bin)
        .args(["--tls-cert", "c", "--tls-key", "k", "--other-types", "allow"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass, deny"));
}
