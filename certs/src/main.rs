//! `volops-certs --out DIR --dns NAME[,NAME...] [--ip IP,...] [--days N] [--force]`

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Writes a CA (ca.crt) and a serving certificate (tls.crt, tls.key) signed by it.
#[derive(Debug, Parser)]
#[command(name = "volops-certs", version)]
struct Args {
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// DNS names for the serving certificate, comma separated.
    #[arg(long, value_delimiter = ',')]
    dns: Vec<String>,
    /// IP addresses for the serving certificate, comma separated.
    #[arg(long, value_delimiter = ',')]
    ip: Vec<IpAddr>,
    /// Validity in days.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help / --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("volops-certs: {first}");
            return ExitCode::from(2);
        }
    };
    let dns: Vec<String> = args.dns.into_iter().filter(|d| !d.trim().is_empty()).collect();
    let result = volops_certs::generate(&dns, &args.ip, args.days)
        .and_then(|b| volops_certs::write_bundle(&b, &args.out, args.force));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("volops-certs: {e}");
            ExitCode::from(2)
        }
    }
}
