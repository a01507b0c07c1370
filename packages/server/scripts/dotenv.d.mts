/** The variables of a dotenv text, as wrangler's dotenv reads them (see dotenv.mjs). */
export declare function parseDotenv(text: string): Record<string, string>;
