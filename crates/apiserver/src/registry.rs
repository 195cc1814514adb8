//! The resources served: the built-ins plus whatever CustomResourceDefinitions add.

use serde_json::Value;
use std::sync::RwLock;
use weft_api::resources::{builtin_resources, ResourceInfo};

/// A served resource and, for custom resources, its CRD's printer columns and schema.
#[derive(Clone, Debug)]
pub struct Served {
    pub info: ResourceInfo,
    pub custom: bool,
    pub printer_columns: Vec<Value>,
    pub schema: Option<Value>,
    /// For CRDs with several versions: the one objects are stored as.
    pub storage_version: String,
}

pub struct Registry {
    builtins: Vec<Served>,
    custom: RwLock<Vec<Served>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Registry {
        let builtins = builtin_resources()
            .into_iter()
            .map(|info| Served { storage_version: info.version.clone(), info, custom: false, printer_columns: vec![], schema: None })
            .collect();
        Registry { builtins, custom: RwLock::new(Vec::new()) }
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Served> {
        if let Some(s) = self.builtins.iter().find(|s| s.info.group == group && s.info.version == version && s.info.plural == plural) {
            return Some(s.clone());
        }
        self.custom.read().unwrap().iter().find(|s| s.info.group == group && s.info.version == version && s.info.plural == plural).cloned()
    }

    pub fn all(&self) -> Vec<Served> {
        let mut v = self.builtins.clone();
        v.extend(self.custom.read().unwrap().iter().cloned());
        v
    }

    /// Replaces the custom resources with those the given (established) CRDs define.
    pub fn set_crds(&self, crds: &[Value]) {
        let mut out = Vec::new();
        for crd in crds {
            out.extend(served_from_crd(crd));
        }
        *self.custom.write().unwrap() = out;
    }
}

/// The resources one CRD serves (one per served version).
pub fn served_from_crd(crd: &Value) -> Vec<Served> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("").to_string();
    let names = &spec["names"];
    let strs = |v: &Value| -> Vec<String> { v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default() };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or("v1")
        .to_string();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| Served {
            info: ResourceInfo {
                group: group.clone(),
                version: v["name"].as_str().unwrap_or("v1").to_string(),
                kind: names["kind"].as_str().unwrap_or("").to_string(),
                plural: names["plural"].as_str().unwrap_or("").to_string(),
                singular: names["singular"].as_str().map(String::from).unwrap_or_else(|| names["kind"].as_str().unwrap_or("").to_lowercase()),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                short_names: strs(&names["shortNames"]),
                categories: strs(&names["categories"]),
                has_status: v.pointer("/subresources/status").is_some(),
                has_scale: v.pointer("/subresources/scale").is_some(),
            },
            custom: true,
            printer_columns: v["additionalPrinterColumns"].as_array().cloned().unwrap_or_default(),
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            storage_version: storage_version.clone(),
        })
        .collect()
}
