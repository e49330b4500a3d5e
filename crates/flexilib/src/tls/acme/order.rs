//! One certificate from the CA: an order for every name, each name proved
//! by HTTP-01 (the plain port answers the token, see [`super::challenge`]),
//! a fresh ECDSA P-256 key and its CSR, the chain downloaded.

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};

use super::challenge;
use super::AcmeError;

/// Longest the CA may take to validate the names, and to issue.
const POLL: RetryPolicy = RetryPolicy::new().timeout(std::time::Duration::from_secs(120));

/// A certificate and its key, as PEM.
pub struct Certificate {
    /// The chain, leaf first.
    pub chain_pem: String,
    /// The key (PKCS#8).
    pub key_pem: String,
}

/// Orders a certificate for `domains` and waits for it.
pub async fn issue(account: &Account, domains: &[String]) -> Result<Certificate, AcmeError> {
    let identifiers: Vec<Identifier> = domains
        .iter()
        .map(|domain| Identifier::Dns(domain.clone()))
        .collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    tracing::info!(domains = %domains.join(","), order = order.url(), "ACME order placed");

    // Answered until the order is done, whatever its end.
    let mut published = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        let domain = authorization.identifier().to_string();
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => {
                return Err(AcmeError::Authorization {
                    domain,
                    message: format!("status {status:?}"),
                })
            }
        }
        let mut http01 = authorization
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| AcmeError::NoHttp01 {
                domain: domain.clone(),
            })?;
        published.push(challenge::publish(
            http01.token.clone(),
            http01.key_authorization().as_str().to_owned(),
        ));
        http01.set_ready().await?;
    }

    let status = order.poll_ready(&POLL).await?;
    if status != OrderStatus::Ready {
        return Err(why_invalid(&mut order, status).await);
    }
    drop(published);

    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::new(domains.to_vec())?.serialize_request(&key)?;
    order.finalize_csr(csr.der()).await?;
    let chain_pem = order.poll_certificate(&POLL).await?;
    Ok(Certificate {
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

/// What the CA said about the names it did not validate.
async fn why_invalid(order: &mut instant_acme::Order, status: OrderStatus) -> AcmeError {
    let mut problems = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                problems.push(format!("{}: {problem}", authorization.identifier()));
            }
        }
    }
    AcmeError::Order {
        status: format!("{status:?}"),
        problems: if problems.is_empty() {
            "no reason given".into()
        } else {
            problems.join("; ")
        },
    }
}
