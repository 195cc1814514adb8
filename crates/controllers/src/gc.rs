pub(crate) async fn run(_ctx: std::sync::Arc<crate::Ctx>) -> anyhow::Result<()> { std::future::pending().await }
