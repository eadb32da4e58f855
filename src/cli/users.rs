//! `latchkey users …`: look up, disable, enable a user or revoke their tokens, straight against
//! auth's database (no restart; running services see it on the next verification). `show` by
//! email lists every user holding the address, with ids and identities — the operator's answer
//! to USER_AMBIGUOUS; the other commands act only on one user and ask for an id when an email
//! names several.

use super::{Failure, refused};
use latchkey_auth::admin::{self, Account};
use latchkey_auth::error::AuthError;
use latchkey_common::ExposeSecret;
use latchkey_common::clock::rfc3339;
use latchkey_common::config::Config;

/// What to do to one user, named by id or email.
#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Print the user (every user, for an email several share): id, email, identities, disabled,
    /// tokens valid after, timestamps.
    Show { user: String },
    /// Refuse every token of the user with USER_DISABLED and issue no new one.
    Disable { user: String },
    /// Let a disabled user in again.
    Enable { user: String },
    /// Refuse every token issued to the user so far (TOKEN_REVOKED); new ones work.
    Revoke { user: String },
}

/// Runs one user command on auth's database.
pub async fn run(command: UsersCommand, config: &Config) -> Result<(), Failure> {
    let auth = latchkey_auth::AuthConfig::from_config(config)?;
    let db = latchkey_common::db::connect(auth.database_url.expose_secret())
        .await
        .map_err(anyhow::Error::from)?;
    latchkey_auth::store::migrate(&db)
        .await
        .map_err(anyhow::Error::from)?;
    let now = admin::database_now(&db)
        .await
        .map_err(|error| anyhow::anyhow!("reading the database's clock: {error}"))?;
    let (who, action) = match &command {
        UsersCommand::Show { user } => (user, None),
        UsersCommand::Disable { user } => (user, Some(Action::Disable)),
        UsersCommand::Enable { user } => (user, Some(Action::Enable)),
        UsersCommand::Revoke { user } => (user, Some(Action::Revoke)),
    };
    let found = admin::lookup(&db, who).await.map_err(not_found)?;
    let Some(action) = action else {
        print_all(&found);
        return Ok(());
    };
    let [one] = found.as_slice() else {
        print_all(&found);
        return Err(Failure::Runtime(anyhow::anyhow!(
            "USER_AMBIGUOUS: {} users hold this email (listed above); run the command again with the id of the one you mean",
            found.len()
        )));
    };
    let id = one.user.id.as_str();
    let changed = match action {
        Action::Disable => admin::set_disabled(&db, id, true).await,
        Action::Enable => admin::set_disabled(&db, id, false).await,
        Action::Revoke => admin::revoke(&db, id, now).await,
    }
    .map_err(refused)?;
    print_account(&changed);
    Ok(())
}

/// An operator's lookup that finds nobody says so in the operator's words (no token is
/// involved, unlike the API's USER_NOT_SYNCED); other errors are refusals from the catalogue.
fn not_found(error: AuthError) -> Failure {
    match error {
        AuthError::UserNotSynced(who) if who.contains('@') => Failure::Runtime(anyhow::anyhow!(
            "no user with email {who} (sync-user has never seen it)"
        )),
        AuthError::UserNotSynced(who) => Failure::Runtime(anyhow::anyhow!(
            "no user with id {who}; give a user id or an email (`latchkey users show EMAIL` lists the ids)"
        )),
        other => refused(other),
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Disable,
    Enable,
    Revoke,
}

fn print_all(accounts: &[Account]) {
    if accounts.len() > 1 {
        println!("{} users hold this email:", accounts.len());
    }
    for (index, account) in accounts.iter().enumerate() {
        if index > 0 {
            println!();
        }
        print_account(account);
    }
}

fn print_account(account: &Account) {
    let user = &account.user;
    println!("id:                 {}", user.id);
    println!("email:              {}", printable(&user.email));
    for identity in &account.identities {
        println!(
            "identity:           {}/{} <{}>{}, last signed in {}",
            printable(&identity.provider),
            printable(&identity.subject),
            printable(&identity.email),
            if identity.email_verified {
                " verified"
            } else {
                ""
            },
            rfc3339(identity.updated_at)
        );
    }
    println!("disabled:           {}", user.disabled);
    println!(
        "tokens valid after: {}",
        match user.tokens_valid_after {
            0 => "(never revoked)".to_owned(),
            at => rfc3339(at),
        }
    );
    println!("created:            {}", rfc3339(user.created_at));
    println!("updated:            {}", rfc3339(user.updated_at));
}

/// Control characters escaped, so a stored value cannot drive the operator's terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
