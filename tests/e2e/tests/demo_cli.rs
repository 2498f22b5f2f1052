//! `volops-demo --once` as a user runs it with stdout piped: exit 0, 80 columns, no escapes.

use std::process::Command;

#[test]
fn demo_once_exits_zero_with_plain_80_column_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_volops-demo"))
        .arg("--once")
        .current_dir(volops_e2e::repo_root())
        .output()
        .expect("volops-demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for line in stdout.lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {line:?}");
        assert!(
            !line.contains('\u{1b}'),
            "escape sequence without a TTY: {line:?}"
        );
    }
    for want in [
        "denied the request: desired storage 512Mi must be greater than the current 1Gi",
        "OK: 2/2 expansions Successful, 2/2 denials seen",
        "zk-quickstart-data-zk-quickstart-2",
        "autoscaler: 1 request(s), Successful, then BelowThreshold",
        "data-redis-standalone-0 1Gi 2Gi",
    ] {
        let flat = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(want), "{want:?} missing from:\n{stdout}");
    }
    assert!(stdout.contains("DATABASE"), "summary table header:\n{stdout}");
}
