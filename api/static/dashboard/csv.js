// CSV reading for the dashboard: RFC 4180 (quoted fields, commas, quotes doubled, line breaks
// inside quotes), a UTF-8 byte-order mark, CRLF/LF/CR line ends; then rows into the contacts
// the REST API takes today (phone_number, name, email, scheduledCallDateTime, timezone, and
// every other column into custom_data).

/** Parse CSV text into an array of rows (arrays of strings). */
export function parseCsv(text) {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;   // inside a quoted field
  let wasQuoted = false; // the current field began with a quote
  let i = 0;
  const n = text.length;
  const endField = () => { row.push(field); field = ""; wasQuoted = false; };
  const endRow = () => { endField(); rows.push(row); row = []; };
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false; i += 1; continue;
      }
      field += c; i += 1; continue;
    }
    if (c === '"' && field === "" && !wasQuoted) { quoted = true; wasQuoted = true; i += 1; continue; }
    if (c === ",") { endField(); i += 1; continue; }
    if (c === "\r" || c === "\n") {
      endRow();
      i += (c === "\r" && text[i + 1] === "\n") ? 2 : 1;
      continue;
    }
    field += c; i += 1;
  }
  if (quoted) throw new Error("the file ends inside a quoted field (a quote is not closed)");
  if (field !== "" || row.length) endRow();
  // Blank lines are no rows.
  return rows.filter((r) => !(r.length === 1 && r[0].trim() === ""));
}

export const PHONE_COLUMNS = ["phone_number", "phone", "number", "mobile"];
const KNOWN = { name: "name", email: "email", scheduledcalldatetime: "scheduledCallDateTime",
  scheduled_call_date_time: "scheduledCallDateTime", timezone: "timezone" };

function norm(header) { return header.trim().toLowerCase().replace(/[\s-]+/g, "_"); }

/**
 * Rows of a CSV with a header line into contacts.
 * Returns {contacts, sourceRows, columns: {phone_number, name, ...}, customColumns, errors: [{row, message}]}.
 * Rows are numbered as in the file, the header being row 1 (a quoted field may span lines);
 * sourceRows[i] is the row of contacts[i].
 */
export function csvToContacts(text) {
  const rows = parseCsv(text);
  if (!rows.length) throw new Error("the file is empty");
  const header = rows[0].map((h) => h.trim());
  const keys = header.map(norm);
  let phoneAt = -1;
  for (const wanted of PHONE_COLUMNS) {
    phoneAt = keys.indexOf(wanted);
    if (phoneAt >= 0) break;
  }
  if (phoneAt < 0) {
    throw new Error(`no phone column: the header needs one of ${PHONE_COLUMNS.join(", ")} ` +
      `(found: ${header.join(", ") || "nothing"})`);
  }
  const roles = keys.map((k, i) => (i === phoneAt ? "phone_number" : (KNOWN[k] || null)));
  const seen = new Set();
  roles.forEach((r, i) => { if (r && r !== "phone_number") { if (seen.has(r)) roles[i] = null; seen.add(r); } });
  const customColumns = header.filter((h, i) => roles[i] === null && h !== "");
  const contacts = [];
  const sourceRows = [];
  const errors = [];
  for (let r = 1; r < rows.length; r++) {
    const cells = rows[r];
    if (cells.every((v) => v.trim() === "")) continue; // an empty line of commas
    const contact = {};
    const custom = {};
    header.forEach((h, i) => {
      const value = (cells[i] ?? "").trim();
      const role = roles[i];
      if (role === "phone_number") contact.phone_number = value;
      else if (role) { if (value !== "") contact[role] = value; }
      else if (h !== "" && value !== "") custom[h] = value;
    });
    if (cells.length > header.length && cells.slice(header.length).some((v) => v.trim() !== "")) {
      errors.push({ row: r + 1, message: `${cells.length} fields, the header has ${header.length}` });
      continue;
    }
    if (!contact.phone_number) {
      errors.push({ row: r + 1, message: `no phone number in column '${header[phoneAt]}'` });
      continue;
    }
    if (Object.keys(custom).length) contact.custom_data = custom;
    contacts.push(contact);
    sourceRows.push(r + 1);
  }
  const columns = {};
  roles.forEach((role, i) => { if (role) columns[role] = header[i]; });
  return { contacts, sourceRows, columns, customColumns, errors };
}
