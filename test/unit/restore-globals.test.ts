import { describe, expect, it } from 'vitest';
import { planGlobals, rolesInGlobals, scriptForPlan } from '../../src/restore/globals.js';

// The shape pg_dumpall 15 --globals-only writes.
const script = `--
-- PostgreSQL database cluster dump
--

SET default_transaction_read_only = off;

--
-- Roles
--

CREATE ROLE erp4_app;
ALTER ROLE erp4_app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20;
CREATE ROLE "Audit ""Team""";
ALTER ROLE "Audit ""Team""" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:x';
ALTER ROLE postgres SET search_path TO public;

GRANT erp4_app TO "Audit ""Team""" GRANTED BY postgres;
`;

describe('globals (roles) of a production restore', () => {
  it('lists the roles the script creates, quoted names included', () => {
    expect(rolesInGlobals(script)).toEqual(['erp4_app', 'Audit "Team"', 'postgres']);
  });

  it('plans creations and changes, and never touches the role it connects as', () => {
    expect(planGlobals(rolesInGlobals(script), new Set(['postgres', 'erp4_app']), 'postgres')).toEqual({
      create: ['Audit "Team"'],
      change: ['erp4_app'],
      skipped: ['postgres'],
    });
  });

  it('keeps CREATE ROLE only for roles to create and drops every statement about a skipped role', () => {
    const plan = { create: ['Audit "Team"'], change: ['erp4_app'], skipped: ['postgres'] };
    const lines = scriptForPlan(script, plan).split('\n');
    expect(lines).not.toContain('CREATE ROLE erp4_app;');
    expect(lines).toContain('CREATE ROLE "Audit ""Team""";');
    expect(lines.some((line) => line.startsWith('ALTER ROLE erp4_app WITH'))).toBe(true);
    expect(lines.some((line) => line.includes('ROLE postgres'))).toBe(false);
    expect(lines).toContain('GRANT erp4_app TO "Audit ""Team""" GRANTED BY postgres;');
  });
});
