/**
 * Text parsers both adapters install so a query returns the same JavaScript values on PGlite and
 * PostgreSQL (see `Queryable` in ./port.ts). The drivers disagree by default: pg returns int8 as a
 * string and a date as local midnight, PGlite returns int8 as a number and a date as UTC midnight.
 */

/** Type oids whose parsing we align. */
export const OID = {
  int8: 20,
  int8Array: 1016,
  date: 1082,
  dateArray: 1182,
  interval: 1186,
  intervalArray: 1187,
} as const;

/** int8 as a number while it is exact, a bigint beyond ±2^53 (what PGlite does by default). */
export const parseInt8 = (text: string): number | bigint => {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : BigInt(text);
};

/** Dates and intervals stay as Postgres wrote them: a calendar date is not an instant. */
export const keepText = (text: string): string => text;
