//! TLS client settings, built once per init from the `tls-*` options.
//!
//! rustls with the ring provider, chosen explicitly here (no process-wide
//! default is installed, so a host that uses rustls itself is unaffected).
//! CA and client-certificate files are read once, at init; every connection
//! then shares the resulting `ClientConfig`.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::config::TlsSettings;
use crate::error::{Error, ErrorKind, Result, TlsFailure};

/// What every TLS connection of one init shares.
#[derive(Debug)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    /// `tls-sni`: the name to send and verify instead of the node's host.
    pub sni: Option<ServerName<'static>>,
}

impl TlsClient {
    pub fn from_settings(tls: &TlsSettings) -> Result<TlsClient> {
        let roots = root_store(tls)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| failure(&e))?
            .with_root_certificates(roots);
        let config = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "tls-cert")?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    Error::config(format!(
                        "tls-key: cannot read a private key from {}: {e}",
                        key.display()
                    ))
                })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| Error::config(format!("tls-cert/tls-key: {e}")))?
            }
            _ => builder.with_no_client_auth(),
        };
        let sni = match &tls.sni {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|e| Error::config(format!("tls-sni '{name}': {e}")))?,
            ),
            None => None,
        };
        Ok(TlsClient {
            config: Arc::new(config),
            sni,
        })
    }

    /// The name a connection to `host` sends and verifies.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>> {
        match &self.sni {
            Some(name) => Ok(name.clone()),
            None => ServerName::try_from(host.to_string()).map_err(|e| {
                Error::new(
                    ErrorKind::Tls,
                    format!("'{host}' cannot be verified as a TLS server name: {e}"),
                )
            }),
        }
    }
}

fn root_store(tls: &TlsSettings) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let mut add = |certs: Vec<CertificateDer<'static>>, from: &str| -> Result<()> {
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::config(format!(
                "{from}: no usable CA certificate found"
            )));
        }
        Ok(())
    };
    if let Some(file) = &tls.cacert {
        add(
            read_certs(file, "tls-cacert")?,
            &format!("tls-cacert {}", file.display()),
        )?;
    } else if let Some(dir) = &tls.cacertdir {
        let entries = fs::read_dir(dir).map_err(|e| {
            Error::config(format!(
                "tls-cacertdir: cannot read folder {}: {e}",
                dir.display()
            ))
        })?;
        let mut certs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                // Not every file in a CA folder is a certificate (hash links
                // to them are, READMEs are not): take what parses.
                if let Ok(found) = read_certs(&path, "tls-cacertdir") {
                    certs.extend(found);
                }
            }
        }
        add(certs, &format!("tls-cacertdir {}", dir.display()))?;
    } else {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            return Err(Error::config(
                "TLS: no system CA certificates found; set tls-cacert or tls-cacertdir",
            ));
        }
        add(found.certs, "the system CA store")?;
    }
    Ok(roots)
}

fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::config(format!("{key}: cannot read {}: {e}", path.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::config(format!("{key}: {} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "{key}: no certificate in {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// Classifies a TLS failure from rustls's error variants (never from its
/// text); the message keeps rustls's own words and adds what to check.
pub(crate) fn failure(err: &rustls::Error) -> Error {
    use rustls::{AlertDescription, CertificateError};
    let class = match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                TlsFailure::UnknownIssuer
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsFailure::OutsideValidity,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::WrongName
            }
            _ => TlsFailure::Other,
        },
        // TLS 1.3 names the missing client certificate; TLS 1.2 servers
        // just fail the handshake.
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure,
        ) => TlsFailure::ClientCertificateWanted,
        rustls::Error::InvalidMessage(_) => TlsFailure::NotTls,
        _ => TlsFailure::Other,
    };
    Error::tls(class, format_args!("TLS: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_config_errors_that_name_the_option() {
        let tls = TlsSettings {
            enabled: true,
            cacert: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = TlsClient::from_settings(&tls).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("tls-cacert") && e.message.contains("/nonexistent/ca.pem"));
        let tls = TlsSettings {
            enabled: true,
            cacertdir: Some("/nonexistent-dir".into()),
            ..Default::default()
        };
        assert!(TlsClient::from_settings(&tls)
            .unwrap_err()
            .message
            .contains("tls-cacertdir"));
    }

    #[test]
    fn failures_are_classified_from_rustls_variants() {
        use rustls::{AlertDescription, CertificateError, InvalidMessage};
        let cert = rustls::Error::InvalidCertificate;
        let cases = [
            (
                cert(CertificateError::UnknownIssuer),
                TlsFailure::UnknownIssuer,
                "tls-cacert",
            ),
            (
                cert(CertificateError::BadSignature),
                TlsFailure::UnknownIssuer,
                "tls-cacert",
            ),
            (
                cert(CertificateError::Expired),
                TlsFailure::OutsideValidity,
                "validity",
            ),
            (
                cert(CertificateError::NotValidYet),
                TlsFailure::OutsideValidity,
                "validity",
            ),
            (
                cert(CertificateError::NotValidForName),
                TlsFailure::WrongName,
                "tls-sni",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                TlsFailure::ClientCertificateWanted,
                "tls-cert and tls-key",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
                TlsFailure::ClientCertificateWanted,
                "tls-cert and tls-key",
            ),
            (
                rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
                TlsFailure::NotTls,
                "speak TLS",
            ),
        ];
        for (err, class, fix) in cases {
            let e = failure(&err);
            assert_eq!(e.kind, ErrorKind::Tls);
            assert_eq!(e.cause, Some(crate::error::Cause::Tls(class)), "{err}");
            // rustls's own words stay in the message, with the fix after them.
            assert!(e.message.contains(&err.to_string()), "{}", e.message);
            assert!(e.message.contains(fix), "{}", e.message);
        }
        let other = failure(&rustls::Error::DecryptError);
        assert_eq!(
            other.cause,
            Some(crate::error::Cause::Tls(TlsFailure::Other))
        );
        assert_eq!(other.message, "TLS: cannot decrypt peer's message");
    }
}
