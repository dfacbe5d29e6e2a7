// Shared by the account methods; the leading underscore keeps this file from being a method.
export const userId = { type: 'string', minLength: 1, maxLength: 254 } as const;
export const password = { type: 'string', minLength: 8, maxLength: 1024 } as const;

export const credentials = {
  type: 'object',
  properties: { user_id: userId, password },
  required: ['user_id', 'password'],
  additionalProperties: false,
} as const;

export const grant = {
  type: 'object',
  properties: {
    user_id: { type: 'string' },
    session_id: { type: 'string', format: 'uuid' },
    session_key: { type: 'string' },
    expires: { type: 'integer' },
  },
  required: ['user_id', 'session_id', 'session_key', 'expires'],
} as const;

export const ok = { type: 'object', properties: { ok: { const: true } }, required: ['ok'] } as const;
