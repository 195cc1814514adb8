//! The pod's hostname. In weft every pod has its own UTS namespace, so the
//! kernel's hostname as this process sees it is the pod's, as in a container.

pub fn get() -> std::io::Result<String> {
    let name = nix::unistd::gethostname().map_err(std::io::Error::from)?;
    Ok(name.to_string_lossy().into_owned())
}

/// The hostname, or an empty string when the kernel cannot tell (never seen in
/// practice; upstream would exit, a server here keeps answering).
pub fn get_or_log() -> String {
    get().unwrap_or_else(|e| {
        tracing::error!("failed to get hostname: {e}");
        String::new()
    })
}
