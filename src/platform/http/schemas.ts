import { Type, type TSchema } from 'typebox';

/** RFC 9457 problem document as every route answers errors (see problem.ts); extensions vary by code. */
export const ProblemSchema = Type.Object(
  { type: Type.String(), title: Type.String(), status: Type.Integer(), detail: Type.String(), code: Type.String() },
  { additionalProperties: true },
);

/** `?limit=&cursor=` of a cursor-paginated list. */
export const PageQuerySchema = Type.Object(
  {
    // Query strings are not type-coerced (coerceTypes is off), so the number arrives as text.
    limit: Type.Optional(Type.String({ pattern: '^(?:[1-9]|[1-9][0-9]|1[0-9][0-9]|200)$', description: 'Page size, 1..200 (default 50)' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
);

/** Page size when `limit` is absent. */
export const DEFAULT_PAGE_SIZE = 50;

/** One page of `item`s and the cursor of the next (null on the last page). */
export const pageSchemaOf = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });
