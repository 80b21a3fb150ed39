//! TLS for the Vault client, built with rustls directly so that `VAULT_CACERT`,
//! `VAULT_CAPATH`, client certificates and `VAULT_SKIP_VERIFY` mean what they mean to the
//! Vault CLI: a given CA replaces the system roots rather than adding to them.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::settings::TlsSettings;

/// A rustls client configuration for the given settings.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS set-up failed")?;
    let builder = if settings.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        builder.with_root_certificates(roots(settings)?)
    };
    let config = match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certificates(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("cannot read the client key {}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("the client certificate and key do not fit together")?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// For a client whose nodes all speak plain HTTP. reqwest wants a TLS configuration all the
/// same (without one it would look for a process-wide crypto provider); this one trusts no
/// certificate and costs nothing to build, unlike loading the system's roots.
pub fn plain_http_config() -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS set-up failed")?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

fn roots(settings: &TlsSettings) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    if settings.ca_cert.is_none() && settings.ca_path.is_none() {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = store.add(cert);
        }
        if store.is_empty() {
            bail!("no system CA certificates found; set VAULT_CACERT to the CA that signed Vault's certificate");
        }
        return Ok(store);
    }
    if let Some(file) = &settings.ca_cert {
        for cert in read_certificates(file)? {
            store
                .add(cert)
                .with_context(|| format!("{} holds an unusable CA certificate", file.display()))?;
        }
    }
    if let Some(dir) = &settings.ca_path {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the CA directory {}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                for cert in read_certificates(&path).unwrap_or_default() {
                    let _ = store.add(cert);
                }
            }
        }
    }
    if store.is_empty() {
        bail!("no CA certificate found in the configured VAULT_CACERT/VAULT_CAPATH");
    }
    Ok(store)
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

/// `VAULT_SKIP_VERIFY`: accepts any certificate but still checks handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
