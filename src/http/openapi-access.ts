/** The OpenAPI description of the access-control routes: users, roles, bans, admins, sign-in (docs/http-api.md). */

/** JSON Schema of one value, as OpenAPI 3.1 takes it. */
type Schema = Record<string, unknown>;

const str: Schema = { type: 'string' };
const time: Schema = { type: 'string', format: 'date-time' };
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Schema, description = 'OK'): Schema => ({ description, content: { 'application/json': { schema } } });
const body = (schema: Schema): Schema => ({ required: true, content: { 'application/json': { schema } } });
const problem = (description: string): Schema => json(ref('Error'), description);
const errors = { '400': problem('Bad input: an unknown field, a wrong type, an invalid topic filter, a weak password (the message says which)'), '401': problem('Not signed in'), '403': problem('A viewer asked for a change, or a cookie request from another origin'), '413': problem('Body larger than 256 KiB'), '503': problem('The store could not be written; nothing changed') };
const notFound = { '404': problem('No such record') };
const conflict = { '409': problem('Exists already, belongs to the password file, or would remove the last administrator') };
const gone = { '204': { description: 'Deleted' } };
const name = (param: string): Schema => ({ name: param, in: 'path', required: true, schema: str });
const page = (item: string): Schema => ({ type: 'object', required: ['items', 'total', 'page', 'limit'], properties: { items: { type: 'array', items: ref(item) }, total: { type: 'integer' }, page: { type: 'integer' }, limit: { type: 'integer' } } });
const paging = [
  { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1, default: 1 } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
];
const rules: Schema = { type: 'array', maxItems: 1000, items: ref('AclRule') };
const password: Schema = { type: 'string', minLength: 8, maxLength: 1024, description: 'Refused when weak: shorter than 8, one repeated character, a common password, or containing the user name' };
const adminRole: Schema = { type: 'string', enum: ['administrator', 'viewer'] };

/** Paths of the access routes. */
export const ACCESS_PATHS: Record<string, Schema> = {
  '/api/users': {
    get: { summary: 'MQTT users managed at runtime', parameters: [{ name: 'search', in: 'query', description: 'Substring of the user name', schema: str }, ...paging], responses: { '200': json(page('User')), ...errors } },
    post: {
      summary: 'Create a user (its roles must exist); it can connect at once',
      requestBody: body({ type: 'object', additionalProperties: false, required: ['username', 'password'], properties: { username: str, password, roles: { type: 'array', items: str }, acl: rules } }),
      responses: { '201': json(ref('User'), 'Created'), ...errors, ...conflict },
    },
  },
  '/api/users/{username}': {
    get: { summary: 'One user', parameters: [name('username')], responses: { '200': json(ref('User')), ...errors, ...notFound } },
    put: {
      summary: 'Change password, roles or own rules (given fields only); connected clients follow the new rules at their next PUBLISH / SUBSCRIBE',
      parameters: [name('username')],
      requestBody: body({ type: 'object', additionalProperties: false, minProperties: 1, properties: { password, roles: { type: 'array', items: str }, acl: rules } }),
      responses: { '200': json(ref('User')), ...errors, ...notFound },
    },
    delete: { summary: 'Delete a user; its connected clients are disconnected (MQTT 5: DISCONNECT 0x98) on every node', parameters: [name('username')], responses: { ...gone, ...errors, ...notFound } },
  },
  '/api/roles': {
    get: { summary: 'Roles and the users that have them', parameters: paging, responses: { '200': json(page('Role')), ...errors } },
    post: { summary: 'Create a role', requestBody: body({ type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' }, acl: rules } }), responses: { '201': json(ref('Role'), 'Created'), ...errors, ...conflict } },
  },
  '/api/roles/{name}': {
    get: { summary: 'One role', parameters: [name('name')], responses: { '200': json(ref('Role')), ...errors, ...notFound } },
    put: { summary: "Replace a role's rules", parameters: [name('name')], requestBody: body({ type: 'object', additionalProperties: false, required: ['acl'], properties: { acl: rules } }), responses: { '200': json(ref('Role')), ...errors, ...notFound } },
    delete: { summary: 'Delete a role (taken from its users in the same write)', parameters: [name('name')], responses: { ...gone, ...errors, ...notFound } },
  },
  '/api/bans': {
    get: { summary: 'Bans in force, newest first', parameters: paging, responses: { '200': json(page('Ban')), ...errors } },
    post: {
      summary: 'Ban a client id, a user name or an address (IP or CIDR); matching clients are disconnected (DISCONNECT 0x98), new CONNECTs get 0x8A (MQTT 5) / 5 (3.1.1)',
      requestBody: body({
        type: 'object',
        additionalProperties: false,
        oneOf: [{ required: ['clientId'] }, { required: ['username'] }, { required: ['address'] }],
        properties: { clientId: str, username: str, address: { type: 'string', description: '192.0.2.7, 10.0.0.0/8, 2001:db8::/32' }, until: { oneOf: [time, { type: 'integer', description: 'ms since the epoch' }] }, reason: { type: 'string', maxLength: 500 } },
      }),
      responses: { '201': json(ref('Ban'), 'Created'), ...errors },
    },
  },
  '/api/bans/{id}': {
    get: { summary: 'One ban in force', parameters: [name('id')], responses: { '200': json(ref('Ban')), ...errors, ...notFound } },
    delete: { summary: 'Lift a ban', parameters: [name('id')], responses: { ...gone, ...errors, ...notFound } },
  },
  '/api/admins': {
    get: { summary: 'Admins of the dashboard and API', parameters: paging, responses: { '200': json(page('Admin')), ...errors } },
    post: { summary: 'Create an admin (role administrator by default)', requestBody: body({ type: 'object', additionalProperties: false, required: ['username', 'password'], properties: { username: str, password, role: adminRole } }), responses: { '201': json(ref('Admin'), 'Created'), ...errors, ...conflict } },
  },
  '/api/admins/{username}': {
    get: { summary: 'One admin', parameters: [name('username')], responses: { '200': json(ref('Admin')), ...errors, ...notFound } },
    put: {
      summary: "Change an admin's password (ending its other sessions) or role; a viewer may change its own password",
      parameters: [name('username')],
      requestBody: body({ type: 'object', additionalProperties: false, minProperties: 1, properties: { password, role: adminRole } }),
      responses: { '200': json(ref('Admin')), ...errors, ...notFound, ...conflict },
    },
    delete: { summary: 'Delete an admin and its sessions (not the last administrator)', parameters: [name('username')], responses: { ...gone, ...errors, ...notFound, ...conflict } },
  },
  '/api/auth/login': {
    post: {
      summary: 'Sign an admin in: a session cookie (HttpOnly, SameSite=Strict, 12 h), or with "bearer": true a token in the answer (1 h, or ttlSeconds up to 30 days)',
      security: [],
      requestBody: body({ type: 'object', additionalProperties: false, required: ['username', 'password'], properties: { username: str, password: str, bearer: { type: 'boolean', default: false }, ttlSeconds: { type: 'integer', minimum: 60, maximum: 2_592_000 } } }),
      responses: {
        '200': json({ type: 'object', required: ['username', 'role', 'expiresAt'], properties: { username: str, role: adminRole, expiresAt: time, token: { type: 'string', description: 'Only with "bearer": true' } } }),
        '400': problem('Bad input'),
        '401': problem('Wrong admin name or password (refusals from one address are delayed more and more)'),
        '409': problem('No admin exists yet'),
      },
    },
  },
  '/api/auth/logout': { post: { summary: 'End this session (cookie or bearer token)', responses: { '204': { description: 'Signed out' }, ...errors } } },
};

/** Schemas of the access routes. */
export const ACCESS_SCHEMAS: Record<string, Schema> = {
  AclRule: { type: 'object', additionalProperties: false, required: ['topic', 'access'], properties: { topic: { type: 'string', description: 'A topic filter; %u is the user name, %c the client id' }, access: { type: 'string', enum: ['read', 'write', 'readwrite', 'deny'] } } },
  User: { type: 'object', properties: { username: str, roles: { type: 'array', items: str }, acl: rules, createdAt: time, updatedAt: time } },
  Role: { type: 'object', properties: { name: str, acl: rules, users: { type: 'array', items: str }, createdAt: time, updatedAt: time } },
  Ban: {
    type: 'object',
    properties: { id: str, clientId: { type: ['string', 'null'] }, username: { type: ['string', 'null'] }, address: { type: ['string', 'null'] }, until: { type: ['string', 'null'], format: 'date-time' }, reason: { type: ['string', 'null'] }, createdAt: time, createdBy: str },
  },
  Admin: { type: 'object', properties: { username: str, role: adminRole, createdAt: time, updatedAt: time } },
};
