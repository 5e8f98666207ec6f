import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

/** The command names in a `--help` text's "Commands:" section (without `help`). */
function subcommands(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((match) => match[1]!).filter((name) => name !== 'help');
}

// Help texts in operators' words: no requirement numbers such as "(S8)"; --repo names every repository.
describe('erp4-backup --help', () => {
  it('every command and subcommand: no requirement numbers; --repo lists s3-copy', async () => {
    const pending: string[][] = [[]];
    const seen: string[] = [];
    while (pending.length > 0) {
      const command = pending.shift()!;
      const { code, stdout } = await runCli([...command, '--help'], {});
      expect(code, command.join(' ')).toBe(0);
      seen.push(command.join(' '));
      // "(S8)", "S16", "(S8/S17)"; "S3" alone is the storage service.
      expect(stdout, command.join(' ')).not.toMatch(/\(S\d{1,2}\b|\bS(?!3\b)\d{1,2}\b/);
      const repo = /--repo <name>\s+([^\n]*(?:\n {10,}[^\n]*)*)/.exec(stdout)?.[1];
      if (repo !== undefined && !/^(s3 or s3-copy|only these)/.test(repo)) expect(repo.replace(/\s+/g, ' '), command.join(' ')).toContain('s3-copy');
      for (const sub of subcommands(stdout)) pending.push([...command, sub]);
    }
    // The walk reached the groups' subcommands too.
    expect(seen).toEqual(expect.arrayContaining(['', 'list', 'verify', 'drill', 'restore', 'keys', 'pin', 'lifecycle show', 'schedules list']));
  });
});
