import { Type, type Static } from 'typebox';

// The loader converts fields carrying schema.ts' DURATION_DESCRIPTION; spelled out here because schema.ts imports this file.
const DURATION = 'duration: milliseconds, or 30s / 300ms / 5m / 1h / 7d';

/** The kernel's `notify` section: how notifications (src/platform/notify/port.ts) leave the process. */
export const NotifySection = Type.Object(
  {
    /** `none`: every send is refused (never dropped); `memory`: kept in the process (tests, development); `smtp`: a relay. */
    kind: Type.Enum(['none', 'memory', 'smtp']),
    /** The `From` of every message. */
    from: Type.String({ minLength: 3, pattern: '^[^\\r\\n]+$' }),
    smtp: Type.Optional(
      Type.Object(
        {
          host: Type.String({ minLength: 1 }),
          port: Type.Integer({ minimum: 1, maximum: 65535 }),
          /** TLS from the first byte (465); otherwise STARTTLS whenever the relay offers it. */
          secure: Type.Boolean(),
          /** Send nothing unless STARTTLS encrypted the connection. */
          require_tls: Type.Boolean(),
          username: Type.Optional(Type.String({ minLength: 1 })),
          /** A secret reference (`env:NAME`, `file:/path`) within `secrets`: the password. */
          password_ref: Type.Optional(Type.String({ minLength: 1 })),
          /** Longest wait for the connection, the greeting and each answer. */
          timeout: Type.Integer({ minimum: 0, description: DURATION }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type NotifyConfig = Static<typeof NotifySection>;
