//! `volops-crdgen [--out DIR | --stdout]`: writes the CRDs volops serves as YAML
//! (default `charts/volops/crds/`).

use std::{path::PathBuf, process::ExitCode};

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("charts/volops/crds");
    let mut stdout = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--stdout" => stdout = true,
            "--out" => out = args.next().map(PathBuf::from).ok_or("--out needs a directory")?,
            "-h" | "--help" => {
                println!("usage: volops-crdgen [--out DIR | --stdout]");
                return Ok(());
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: volops-crdgen [--out DIR | --stdout]"
                ));
            }
        }
    }
    let crds = volops_shared::crd::all().map_err(|e| e.to_string())?;
    if stdout {
        for crd in &crds {
            print!(
                "---\n{}",
                volops_shared::crd::to_yaml(crd).map_err(|e| e.to_string())?
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for crd in &crds {
        let path = out.join(volops_shared::crd::file_name(crd));
        let yaml = volops_shared::crd::to_yaml(crd).map_err(|e| e.to_string())?;
        std::fs::write(&path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
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
