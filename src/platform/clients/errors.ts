import { defineErrors } from '../define-errors.ts';

/** Codes of one service calling another for a caller (the cross-service client port). */
export const serviceClientErrors = defineErrors(import.meta.url, {
  SERVICE_IDENTITY_REFUSED: { status: 503, title: "The gateway refused this service's identity" },
  SERVICE_CALL_FAILED: { status: 502, title: 'The called service answered with an error' },
  SERVICE_STREAM_FAILED: { status: 502, title: 'The called service failed mid-stream' },
});
