//! `volops-crdgen [--chart DIR | --stdout [--kubedb]]`: writes the CRDs volops serves as YAML.
//! By default into the chart `charts/volops`: volops's own CRDs under `crds/`, KubeDB's kinds
//! as the optional template `templates/kubedb-crds.yaml` (docs/KUBEDB.md). `--stdout` prints
//! the CRDs of `crds/`, or with `--kubedb` KubeDB's kinds as plain YAML.

use std::{path::PathBuf, process::ExitCode};

use volops_shared::crd;

const USAGE: &str = "usage: volops-crdgen [--chart DIR | --stdout [--kubedb]]";

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut chart = PathBuf::from("charts/volops");
    let mut stdout = false;
    let mut kubedb = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--stdout" => stdout = true,
            "--kubedb" => kubedb = true,
            "--chart" => {
                chart = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--chart needs a directory")?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    if stdout {
        let crds = if kubedb {
            crd::kubedb().map_err(|e| e.to_string())?
        } else {
            crd::own()
        };
        for c in &crds {
            print!("---\n{}", crd::to_yaml(c).map_err(|e| e.to_string())?);
        }
        return Ok(());
    }
    if kubedb {
        return Err(format!("--kubedb goes with --stdout; {USAGE}"));
    }
    let out = chart.join("crds");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for c in &crd::own() {
        let path = out.join(crd::file_name(c));
        let yaml = crd::to_yaml(c).map_err(|e| e.to_string())?;
        std::fs::write(&path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    let path = chart.join(crd::KUBEDB_TEMPLATE);
    let text = crd::kubedb_template().map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("volops-crdgen: {e}");
            ExitCode::from(2)
        }
    }
}
