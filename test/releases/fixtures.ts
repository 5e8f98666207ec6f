/** The database and BACKUP_ENV of the recorded release fixtures (record.ts writes them, compatibility.test.ts reads them). */
export const RELEASE_DB = 'erp4_release';
export const RELEASE_ENV = 'release';
