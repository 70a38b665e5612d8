// OpenSSH's `%x` tokens and `${NAME}` references in ssh_config values, expanded as ssh does.
import { TgError } from '../shared/error.ts';

/** Token letters and their values, e.g. `{ h: '10.0.0.1', p: '22' }`; `%%` is always `%`. */
export type Tokens = Readonly<Record<string, string>>;

// Replace each `%x` by its value; a token `tokens` lacks is refused, as ssh refuses it.
export function expandTokens(value: string, tokens: Tokens, where: string): string {
  return value.replace(/%(.?)/gs, (_match, key: string) => {
    if (key === '%') return '%';
    const expanded = tokens[key];
    if (expanded !== undefined) return expanded;
    const accepted = [...Object.keys(tokens).map((k) => `%${k}`), '%%'].join(' ');
    throw new TgError('E_SSH', `${where}: ${key === '' ? 'a lone % at the end' : `the token %${key}`} is not one ssh expands here (it expands ${accepted})`);
  });
}

// Replace each `${NAME}` by the environment variable NAME; an unset one is refused, as ssh refuses it.
export function expandEnv(value: string, where: string): string {
  return value.replace(/\$\{([^}]*)\}/g, (_match, name: string) => {
    const expanded = process.env[name];
    if (expanded === undefined) throw new TgError('E_SSH', `${where}: the environment variable \${${name}} is not set`);
    return expanded;
  });
}
