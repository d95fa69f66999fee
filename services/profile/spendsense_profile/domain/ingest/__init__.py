"""Parsing and validation of uploaded bank data (SPEC §3), free of I/O beyond reading the upload.

``parse_upload(source, ...)`` turns an upload into the normalized tables of
``spendsense_shared.dataset.TABLES`` (accounts, transactions, credit_liabilities), or into the complete list
of problems that make it unusable. **When ``ParsedUpload.ok`` is false the caller must store nothing**; the
tables of a rejected upload are deliberately empty.

Formats (detected from the file name, then the content type, then the first bytes; a zip is always
recognized by its magic bytes):

* JSON: one user ``{"user_id", "accounts", "transactions", "liabilities"}``, or ``{"users": [user, ...]}``.
* JSON Lines: one user object a line (a bad line is reported and the next one read).
* CSV: accounts, transactions and liabilities files with a ``user_id`` column. A single CSV file is
  identified by its header; a zip archive may hold ``accounts.csv``, ``transactions.csv`` and
  ``liabilities.csv`` (any subset, matched case-insensitively by file stem, in any folder). Columns use the
  Plaid names, flattened with dots (``balances.current``, ``personal_finance_category.primary``) or in the
  common flat spellings (``balance_current``, ``category_primary``, …; see ``csv_reader.py``); liabilities
  rows carry ``purchase_apr`` and ``interest_charge_amount`` and an optional ``liability_type``.
* Plaid API response bodies as Plaid returns them: ``/accounts/get`` (``accounts``, ``item``,
  ``request_id``), ``/transactions/get`` (``accounts``, ``transactions``, ``total_transactions``),
  ``/transactions/sync`` (``added``, ``modified``, ``removed``, ``next_cursor``, ``has_more``) and
  ``/liabilities/get`` (``accounts``, ``liabilities``). A bare body carries no user id: pass
  ``default_user_id``.

Several Plaid bodies together — the envelope. A user object may hold, besides (or instead of) the plain
fields, one key per Plaid endpoint whose value is that endpoint's response body, or a list of bodies
(pages, in the order they were fetched)::

    {
      "user_id": "u1",                                   # optional: else default_user_id
      "accounts_get": {...},                             # /accounts/get body
      "transactions_get": {...} | [{...}, ...],          # /transactions/get pages
      "transactions_sync": [{...}, {...}],               # /transactions/sync pages, in order
      "liabilities_get": {...}                           # /liabilities/get body
    }

Envelopes may also be the users of ``{"users": [...]}`` or the lines of JSON Lines. Sync pages apply in
order, and within a page as Plaid documents: ``added``, then ``modified`` (replaces the transaction with the
same ``transaction_id``; not a duplicate), then ``removed`` (deletes it). A removal of a transaction that
is not in the upload (stored by an earlier one) is returned in ``removed_transaction_ids`` for the caller
to apply. The same account appearing in several bodies (every Plaid body repeats ``accounts``) is one
account: the last copy wins.

Liabilities: Plaid's ``{"credit": [...], "mortgage": [...], "student": [...]}`` or a flat list of entries
keyed by ``account_id`` (kind from ``type``/``liability_type``, else from Plaid's fields; credit by default).
Only credit cards are stored (one row per card: the purchase APR and the interest charged over all APRs);
mortgage and student entries are checked for their account and noted.

Validation (every problem is collected, up to ``max_errors``, then one "…and N more"):

* Required fields and their types per SPEC §3; ``type`` in depository|credit|loan|investment;
  ``holder_category`` individual|business (Plaid's "personal" counts as individual; default individual);
  balances numbers or null; ``payment_channel`` online|in store|other; ``personal_finance_category.primary``
  required; ``pending`` a boolean. In JSON, types are strict: a string amount is "not a number", 1 is not a
  boolean. In CSV every cell is text: "12.50" is a number, "true"/"false" booleans, an empty cell no value.
* Dates are ``YYYY-MM-DD`` calendar dates between 1970 and one day after ``today`` (payment due dates
  may lie further ahead).
* Transactions and liabilities must reference an account of the same user in the upload; a
  ``transaction_id`` may appear once per upload (sync ``modified`` is an update, not a duplicate; the
  same transaction in both a /transactions/get and a /transactions/sync body is a duplicate).
* Non-USD amounts (transactions, balances, card liabilities) are converted with ``fx_rates``
  (USD = amount * rate; the original currency code is kept); a currency without a rate is a problem.
* The sign convention is Plaid's and is preserved: positive = money out of the account.
* Categories: PFC v1 and v2 both map to v1-compatible names (``taxonomy.py``); the detailed name as
  uploaded is kept in ``category_detailed_raw``; unknown names are kept as they are.

Problem paths name the field: ``transactions[17].amount`` (the index within the user's list),
``users[3].transactions[17].amount`` when the upload holds several users,
``transactions_sync[1].added[4].date`` inside an envelope, ``transactions.csv:line 18.amount`` in CSV
(line 1 is the header), ``line 4`` for a JSON Lines line that is not JSON, ``$`` for the upload as a whole.

Two readers, one result. The fast reader (``fast_json.py``, ``fast_csv.py``, ``columns.py``) decodes the
plain shapes — user objects, a ``users`` document, JSON Lines, CSV files and zips of them — in C:
``msgspec`` walks the structure, ``pyarrow.json``/``pyarrow.csv`` build the transaction columns, and every
rule below is applied per column (once per distinct value where values repeat). It says only *whether*
an upload is valid: one it rejects (or does not read: Plaid bodies and envelopes, unknown fields) is read
again by the streaming reader (``json_reader.py``, ``csv_reader.py``, ``records.py``), which names every
problem as described here. ``parse_upload(reader="slow")`` skips the fast reader; ``reader="fast"`` skips
the streaming one (a rejection is then one problem at ``$``).

Memory: the fast reader maps the upload (or spools a stream to a temporary file and maps that) and hands
pyarrow chunks of ~32 MB of users (a larger user, 64k transactions at a time) or CSV pieces of ~16 MB
(a few at a time: they are parsed in threads while the checks run); the streaming reader builds records
one at a time. Rows go to Arrow in chunks either way, so memory follows the (compact) Arrow tables plus
a few chunks, not the size of the document.
"""

from .api import parse_file, parse_span, parse_upload
from .model import ParsedUpload, Problem
from .taxonomy import normalize_category

__all__ = ["ParsedUpload", "Problem", "normalize_category", "parse_file", "parse_span", "parse_upload"]
