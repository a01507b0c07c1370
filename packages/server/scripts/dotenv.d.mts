/** The variables of a dotenv text, as wrangler's dotenv reads them (see dotenv.mjs). */
export declare function parseDotenv(text: string): Record<string, string>;
/** The variables wrangler dev reads from `.dev.vars`, else `.env` and `.env.local` (see dotenv.mjs). */
export declare function wranglerDevVars(
  read: (name: string) => string | undefined,
  env?: Record<string, string | undefined>,
): { vars: Record<string, string>; source: string | undefined };
