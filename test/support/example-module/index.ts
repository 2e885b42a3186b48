import { fileURLToPath } from 'node:url';
import { Type, type Static } from 'typebox';
import { defineModule } from '../../../src/platform/modules/manifest.ts';
import { createTenantRows } from '../../../src/platform/crud/tenant-rows.ts';
import { tenantResourceRoutes } from '../../../src/platform/crud/tenant-resource-routes.ts';
import { isSystemEvent, withInbox } from '../../../src/platform/events/index.ts';
import { exampleErrors } from './errors.ts';

const ExampleConfig = Type.Object(
  {
    /** Longest note title accepted. */
    max_title_length: Type.Integer({ minimum: 1, maximum: 1000 }),
  },
  { additionalProperties: false },
);

export const EXAMPLE_CONSUMER = 'example-note-counter';

/**
 * A module written the way a new capability is (docs/modules.md): a folder whose index.ts exports
 * its manifest, registered with one line (test/support/registry.ts). It defines a tenant-owned
 * resource through the kernel's CRUD helper, two scopes, an error, a config section, a migration
 * and a consumer of its own events. The inventory, tenant-isolation, OWASP and errors-catalogue
 * tests pick it up from the registry.
 */
export const exampleModule = defineModule({
  name: 'example',
  service: 'collaborative',
  prefix: '/example',
  description: 'An example module (tests only): tenant-owned notes',
  scopes: [
    { name: 'example:read', description: 'Read notes', roles: ['viewer'] },
    { name: 'example:write', description: 'Write notes', roles: ['developer'] },
  ],
  errors: [exampleErrors],
  errorsDoc: fileURLToPath(new URL('./errors.md', import.meta.url)),
  config: { key: 'example', schema: ExampleConfig, defaults: { max_title_length: 200 } },
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  create({ platform, config }) {
    const Note = Type.Object(
      {
        title: Type.String({ minLength: 1, maxLength: config.max_title_length }),
        body: Type.Optional(Type.String({ maxLength: 10_000 })),
        tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { maxItems: 16 })),
      },
      { additionalProperties: false },
    );
    const rows = createTenantRows<Static<typeof Note>>({
      db: platform.db,
      table: 'example_notes',
      columns: ['title', 'body', 'tags'],
      events: { type: 'example.note', source: 'collaborative' },
      onEventAppended: () => platform.relay.notify(),
    });
    return {
      routes: tenantResourceRoutes({
        path: '/notes',
        noun: 'note',
        scopes: { read: 'example:read', write: 'example:write' },
        create: Note,
        example: { title: 'Groceries', body: 'milk, eggs', tags: ['home'] },
        rows,
        notFound: { code: 'EXAMPLE_NOTE_NOT_FOUND', status: exampleErrors.EXAMPLE_NOTE_NOT_FOUND.status },
      }),
      consumers: [
        {
          options: { consumer: EXAMPLE_CONSUMER, subject: 'example.note.created' },
          handle: withInbox({ db: platform.db, consumer: EXAMPLE_CONSUMER }, async (delivery, tx) => {
            const tenant = isSystemEvent(delivery.data) ? (delivery.data.payload as { tenant?: unknown }).tenant : undefined;
            if (typeof tenant !== 'string') throw new Error('example.note.created without a tenant');
            await tx.query(
              `INSERT INTO example_note_counts (tenant, created) VALUES ($1, 1)
               ON CONFLICT (tenant) DO UPDATE SET created = example_note_counts.created + 1`,
              [tenant],
            );
          }),
        },
      ],
    };
  },
});
