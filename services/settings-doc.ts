/** One documented setting: its variable, default and meaning (`kubevigil config` and the README's table are built from these). */
export interface SettingDoc {
  env: string;
  default: string;
  help: string;
}
