//! `volops-bench controller` (being written).

use anyhow::{Result, bail};

#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub async fn run(_args: Args) -> Result<()> {
    bail!("not built yet")
}

pub async fn serve(_args: ServeArgs) -> Result<()> {
    bail!("not built yet")
}
