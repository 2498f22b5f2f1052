//! `volops-bench chaos` (being written).

use anyhow::{Result, bail};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> Result<()> {
    bail!("not built yet")
}
