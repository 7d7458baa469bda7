//! `station serve`: the packing-bench web app (验货打包, 交接) for the benches' browsers.

use super::Ctx;
use anyhow::Result;
use std::net::SocketAddr;

pub fn run(ctx: Ctx, listen: Option<SocketAddr>) -> Result<()> {
    station::serve::run(ctx.config, ctx.operator, &ctx.db, listen)
}
