//! Endpoints and EndpointSlices: address lists cut at three, with a count of the rest.

use super::age::age;
use super::{age_column, arr_at, list_with_more, name_column, str_at, Column};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// How many addresses or ports a cell lists before `+ N more...`.
const SHOWN: usize = 3;

pub(super) fn endpoints_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "Endpoints",
            "string",
            "The ready addresses behind the service, with their ports.",
        ),
        age_column(),
    ]
}

pub(super) fn endpoints_row(ep: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(crate::meta::name(ep)),
        json!(format_endpoints(ep)),
        json!(age(ep, now)),
    ]
}

/// `ip:port` for every ready address and port of every subset, `<none>` without subsets.
/// A subset without ports (a headless service without ports) lists bare IPs.
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr_at(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut shown = Vec::new();
    let mut count = 0;
    for subset in subsets {
        let addresses = arr_at(subset, "/addresses");
        let ports = arr_at(subset, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses.iter().take(SHOWN.saturating_sub(shown.len())) {
                shown.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
            for a in addresses.iter().take(SHOWN.saturating_sub(shown.len())) {
                shown.push(join_host_port(str_at(a, "/ip"), number));
            }
        }
    }
    list_with_more(&shown, count.saturating_sub(SHOWN))
}

/// `host:port`, bracketing IPv6 hosts (Go's `net.JoinHostPort`).
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn slice_columns() -> Vec<Column> {
    vec![
        name_column(),
        Column::new(
            "AddressType",
            "string",
            "The kind of addresses the slice holds: IPv4, IPv6 or FQDN.",
        ),
        Column::new(
            "Ports",
            "string",
            "The port numbers (or names) the endpoints serve.",
        ),
        Column::new("Endpoints", "string", "The endpoints' addresses."),
        age_column(),
    ]
}

pub(super) fn slice_row(slice: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports: Vec<String> = arr_at(slice, "/ports")
        .iter()
        .map(|p| {
            match (
                p.get("port").and_then(Value::as_i64),
                p.get("name").and_then(Value::as_str),
            ) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            }
        })
        .collect();
    let addresses: Vec<String> = arr_at(slice, "/endpoints")
        .iter()
        .flat_map(|e| arr_at(e, "/addresses"))
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    vec![
        json!(crate::meta::name(slice)),
        json!(str_at(slice, "/addressType")),
        json!(cut_or_unset(ports)),
        json!(cut_or_unset(addresses)),
        json!(age(slice, now)),
    ]
}

/// The first three items and a count of the rest; `<unset>` for none.
fn cut_or_unset(items: Vec<String>) -> String {
    if items.is_empty() {
        return "<unset>".into();
    }
    let rest = items.len().saturating_sub(SHOWN);
    list_with_more(&items[..items.len().min(SHOWN)], rest)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;

    fn endpoints(subsets: Value) -> Value {
        json!({"metadata": {"name": "web", "creationTimestamp": ago(90)}, "subsets": subsets})
    }

    #[test]
    fn endpoints_with_many_addresses_list_three_and_count_the_rest() {
        let addrs: Vec<Value> = (1..=5)
            .map(|i| json!({"ip": format!("10.0.0.{i}")}))
            .collect();
        let ep = endpoints(
            json!([{"addresses": addrs, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]),
        );
        assert_eq!(
            endpoints_row(&ep, now()),
            vec![
                json!("web"),
                json!("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."),
                json!("90s")
            ]
        );
    }

    #[test]
    fn every_port_multiplies_the_address_count() {
        let ep = endpoints(json!([{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}]));
        assert_eq!(
            endpoints_row(&ep, now())[1],
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...")
        );
    }

    #[test]
    fn endpoints_without_subsets_show_none() {
        assert_eq!(
            endpoints_row(&endpoints(json!([])), now())[1],
            json!("<none>")
        );
        let bare = json!({"metadata": {"name": "web"}});
        assert_eq!(endpoints_row(&bare, now())[1], json!("<none>"));
    }

    #[test]
    fn not_ready_addresses_are_not_listed() {
        let ep = endpoints(
            json!([{"notReadyAddresses": [{"ip": "10.0.0.9"}], "ports": [{"port": 80}]}]),
        );
        assert_eq!(endpoints_row(&ep, now())[1], json!(""));
    }

    #[test]
    fn headless_endpoints_without_ports_list_bare_ips() {
        let ep = endpoints(json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}]));
        assert_eq!(endpoints_row(&ep, now())[1], json!("10.0.0.1,10.0.0.2"));
    }

    #[test]
    fn ipv6_endpoints_are_bracketed() {
        let ep = endpoints(json!([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}]));
        assert_eq!(endpoints_row(&ep, now())[1], json!("[fd00::1]:8080"));
    }

    #[test]
    fn endpoint_slice_lists_ports_and_addresses() {
        let slice = json!({
            "metadata": {"name": "web-abc12", "creationTimestamp": ago(3600)},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "metrics"}, {}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]
        });
        assert_eq!(
            slice_row(&slice, now()),
            vec![
                json!("web-abc12"),
                json!("IPv4"),
                json!("80,metrics,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."),
                json!("60m")
            ]
        );
    }

    #[test]
    fn empty_endpoint_slice_shows_unset() {
        let slice =
            json!({"metadata": {"name": "web-empty"}, "addressType": "IPv6", "endpoints": []});
        let c = slice_row(&slice, now());
        assert_eq!(c[2], json!("<unset>"));
        assert_eq!(c[3], json!("<unset>"));
        assert_eq!(c[4], json!("<unknown>"));
    }
}
