//! `mailrules serve`: the web alone (no mailbox watching), on a tokio runtime, until SIGTERM
//! or SIGINT. Its settings are `[web]`; without the section, the defaults (127.0.0.1:8080).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

pub fn serve(config_path: &Path, listen: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut config = super::load_config(config_path)?;
    let mut web = config.web.clone().unwrap_or_default();
    if let Some(listen) = listen {
        let addr: std::net::SocketAddr = listen.parse().with_context(|| {
            format!("--listen \"{listen}\" is not an address and port (e.g. 127.0.0.1:8080)")
        })?;
        if !addr.ip().is_loopback() && !web.behind_proxy {
            anyhow::bail!(
                "--listen {addr} is reachable from other machines and the web speaks plain HTTP: \
                 put a reverse proxy with TLS in front and set behind_proxy = true in [web], or \
                 listen on 127.0.0.1"
            );
        }
        web.listen = addr;
    }
    config.web = Some(web.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = crate::daemon::Shutdown::new();
        let reload = crate::daemon::Reload::new();
        crate::daemon::listen_for_signals(shutdown.clone(), reload)
            .context("cannot listen for signals")?;
        let listener = crate::web::bind(&web).await?;
        // Tests and scripts start `serve --listen 127.0.0.1:0`: the line says which port.
        if let Ok(addr) = listener.local_addr() {
            super::output::line(format_args!("listening on http://{addr}"))?;
        }
        crate::web::serve(Arc::new(config), listener, shutdown, None).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
