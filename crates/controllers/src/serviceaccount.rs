//! ServiceAccounts controller: every active namespace has a `default`
//! ServiceAccount, recreated if deleted.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::ResourceExt;

use crate::informer::{route, Change, Key};
use crate::queue::Queue;
use crate::{api_error_is, Ctx};

pub const DEFAULT: &str = "default";

/// Whether `ns` needs its default ServiceAccount created.
pub fn needs_default(ns: Option<&Namespace>, has_default: bool) -> bool {
    let Some(ns) = ns else { return false };
    let terminating = ns.metadata.deletion_timestamp.is_some() || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    !terminating && !has_default
}

pub(crate) async fn run(ctx: Arc<Ctx>) -> anyhow::Result<()> {
    tokio::join!(ctx.namespaces.synced(), ctx.service_accounts.synced());
    let queue: Queue<Key> = Queue::new();
    let all = {
        let ctx = ctx.clone();
        move || ctx.namespaces.all().iter().map(|n| Key::new("", n.name_any())).collect::<Vec<_>>()
    };
    for key in all() {
        queue.add(key);
    }
    let namespaces = route(
        ctx.namespaces.clone(),
        queue.clone(),
        |ch: &Change<Namespace>| match ch {
            Change::Applied { new, .. } => vec![Key::new("", new.name_any())],
            Change::Deleted(_) => vec![],
        },
        all.clone(),
    );
    let accounts = route(
        ctx.service_accounts.clone(),
        queue.clone(),
        |ch: &Change<ServiceAccount>| match ch {
            Change::Deleted(sa) if sa.name_any() == DEFAULT => vec![Key::new("", sa.namespace().unwrap_or_default())],
            _ => vec![],
        },
        all.clone(),
    );
    let c = ctx.clone();
    let worker = queue.serve("serviceaccount", move |key| sync(c.clone(), key));
    tokio::join!(namespaces, accounts, worker);
    Ok(())
}

async fn sync(ctx: Arc<Ctx>, key: Key) -> anyhow::Result<Option<Duration>> {
    let ns = ctx.namespaces.get("", &key.name);
    let has_default = ctx.service_accounts.get(&key.name, DEFAULT).is_some();
    if !needs_default(ns.as_deref(), has_default) {
        return Ok(None);
    }
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &key.name);
    let sa = ServiceAccount { metadata: ObjectMeta { name: Some(DEFAULT.into()), ..Default::default() }, ..Default::default() };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => Ok(None),
        // Exists already (a stale cache), or the namespace started terminating.
        Err(e) if api_error_is(&e, 409) || api_error_is(&e, 403) || api_error_is(&e, 404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    #[test]
    fn only_active_namespaces_without_one_get_a_default_service_account() {
        let active = Namespace::default();
        let terminating =
            Namespace { status: Some(NamespaceStatus { phase: Some("Terminating".into()), ..Default::default() }), ..Default::default() };
        assert!(needs_default(Some(&active), false));
        assert!(!needs_default(Some(&active), true));
        assert!(!needs_default(Some(&terminating), false));
        assert!(!needs_default(None, false));
    }
}
