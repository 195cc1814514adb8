pub(crate) async fn run(_ctx: std::sync::Arc<crate::Ctx>, _c: crate::ControllersConfig) -> anyhow::Result<()> { std::future::pending().await }
