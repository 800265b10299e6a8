//! Contacts: people who write to us, each with one or more addresses (matched lower-case).

use rusqlite::{params, Connection, OptionalExtension};

use super::{Store, StoreError};

/// The contact that owns `address`, created when the address is new. The name is filled in
/// when the contact had none yet.
pub(super) fn contact_for(
    conn: &Connection,
    address: &str,
    name: Option<&str>,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let address = normalize(address);
    if address.is_empty() {
        return Ok(None);
    }
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let known: Option<(i64, Option<String>)> = conn
        .prepare_cached(
            "SELECT c.id, c.name FROM contact_addresses a JOIN contacts c ON c.id = a.contact_id \
             WHERE a.address = ?1",
        )?
        .query_row([&address], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((id, known_name)) = known {
        if let (Some(name), None) = (name, known_name) {
            conn.prepare_cached("UPDATE contacts SET name = ?1 WHERE id = ?2")?
                .execute(params![name, id])?;
        }
        return Ok(Some(id));
    }
    conn.prepare_cached("INSERT INTO contacts (name, created_at) VALUES (?1, ?2)")?
        .execute(params![name, now])?;
    let id = conn.last_insert_rowid();
    add_address(conn, &address, id, now)?;
    Ok(Some(id))
}

fn contact_of(conn: &Connection, address: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT contact_id FROM contact_addresses WHERE address = ?1")?
        .query_row([address], |r| r.get(0))
        .optional()?)
}

fn add_address(
    conn: &Connection,
    address: &str,
    contact: i64,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO contact_addresses (address, contact_id, added_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![address, contact, now])?;
    Ok(())
}

/// The SQL expression for a contact's primary address (its first one), given `contact_id`.
pub(super) const PRIMARY_ADDRESS: &str = "(SELECT a.address FROM contact_addresses a \
     WHERE a.contact_id = c.id ORDER BY a.rowid LIMIT 1)";

fn normalize(address: &str) -> String {
    address.trim().to_lowercase()
}

impl Store {
    /// Gives the contact who owns `contact_address` another address, so that mail from either
    /// maps to the same person. When `new_address` already belongs to another contact, the two
    /// contacts are merged (addresses and requested tasks move over). Returns the contact id.
    pub fn contact_add_address(
        &mut self,
        contact_address: &str,
        new_address: &str,
    ) -> Result<i64, StoreError> {
        let now = super::timestamp(chrono::Utc::now());
        let tx = self
            .conn
            .transaction()
            .map_err(|e| StoreError::from(e).at(&self.path))?;
        let id = merge(&tx, contact_address, new_address, &now).map_err(|e| e.at(&self.path))?;
        tx.commit()
            .map_err(|e| StoreError::from(e).at(&self.path))?;
        Ok(id)
    }

    /// The contact id owning `address`, if any.
    pub fn contact_id(&self, address: &str) -> Result<Option<i64>, StoreError> {
        contact_of(&self.conn, &normalize(address))
    }
}

fn merge(
    conn: &Connection,
    contact_address: &str,
    new_address: &str,
    now: &str,
) -> Result<i64, StoreError> {
    let keep = contact_of(conn, &normalize(contact_address))?
        .ok_or_else(|| StoreError::UnknownContact(contact_address.trim().to_string()))?;
    let new_address = normalize(new_address);
    if new_address.is_empty() {
        return Err(StoreError::UnknownContact(new_address));
    }
    match contact_of(conn, &new_address)? {
        None => add_address(conn, &new_address, keep, now)?,
        Some(other) if other == keep => {}
        Some(other) => {
            conn.execute(
                "UPDATE contact_addresses SET contact_id = ?1 WHERE contact_id = ?2",
                params![keep, other],
            )?;
            conn.execute(
                "UPDATE tasks SET requester_contact_id = ?1 WHERE requester_contact_id = ?2",
                params![keep, other],
            )?;
            conn.execute(
                "UPDATE contacts SET name = (SELECT name FROM contacts WHERE id = ?2) \
                 WHERE id = ?1 AND name IS NULL",
                params![keep, other],
            )?;
            conn.execute("DELETE FROM contacts WHERE id = ?1", [other])?;
        }
    }
    Ok(keep)
}
