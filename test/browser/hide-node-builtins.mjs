// Loaded with --import before the client: any Node built-in the client's modules import (node:crypto,
// node:http, ...) fails to resolve, as it would in a browser.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
import { builtinModules } from 'node:module';
const builtins = new Set(builtinModules);
export async function resolve(specifier, context, next) {
  const fromClient = context.parentURL !== undefined && context.parentURL.includes('/src/client/');
  const bare = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  if (fromClient && (specifier.startsWith('node:') || builtins.has(bare))) {
    throw new Error('browser check: the client imported the Node built-in ' + specifier);
  }
  return next(specifier, context);
}`),
);
