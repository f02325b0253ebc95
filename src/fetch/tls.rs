//! The fetcher's TLS settings: the platform's trust store, read when the
//! first certificate has to be checked rather than when the client is built.
//!
//! Why: reading the trust store means parsing every PEM certificate under
//! `/etc/ssl/certs`, about 18 million instructions. Every `tidings` command
//! that builds a fetcher paid it at start-up, whether or not it went on to
//! open an `https` connection; for a `tidings check` over pages that had not
//! changed it was a tenth of the run's instructions. Nothing about verification
//! changes: the first handshake builds the same platform verifier reqwest
//! would have built, and every certificate is checked by it.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::FetchError;

/// The rustls client config reqwest is given: HTTP/2 and HTTP/1.1 offered by
/// ALPN, as reqwest offers them itself, and the verifier below.
pub(super) fn client_config() -> Result<rustls::ClientConfig, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Setup {
            detail: format!("TLS setup: {e}"),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PlatformVerifierOnFirstUse::new(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The platform verifier, built on the first certificate it is asked about.
#[derive(Debug)]
struct PlatformVerifierOnFirstUse {
    provider: Arc<CryptoProvider>,
    /// The verifier, or why it could not be built (kept, so that every
    /// handshake fails with the same reason rather than retrying the read).
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, String>>,
}

impl PlatformVerifierOnFirstUse {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            verifier: OnceLock::new(),
        }
    }

    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                rustls_platform_verifier::Verifier::new(Arc::clone(&self.provider))
                    .map_err(|e| format!("cannot read the platform's trusted certificates: {e}"))
            })
            .as_ref()
            .map_err(|reason| rustls::Error::General(reason.clone()))
    }
}

impl ServerCertVerifier for PlatformVerifierOnFirstUse {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // The handshake signatures are checked with the provider's algorithms,
    // as the platform verifier checks them: no trust store is involved.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_the_config_reads_no_certificates() {
        let config = client_config().expect("config builds");
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let lazy = PlatformVerifierOnFirstUse::new(Arc::clone(&provider));
        assert!(lazy.verifier.get().is_none());
        // The schemes offered are the platform verifier's own.
        let platform = rustls_platform_verifier::Verifier::new(provider).expect("trust store");
        assert_eq!(
            lazy.supported_verify_schemes(),
            platform.supported_verify_schemes()
        );
        assert!(lazy.verifier.get().is_none());
    }
}
