/** The Chromium binary (`CHROMIUM_PATH`, else the apt build at /usr/bin/chromium). */
export declare const chromiumPath: string;
/** The command-line flags every test and benchmark launches Chromium with. */
export declare const chromiumArgs: string[];
