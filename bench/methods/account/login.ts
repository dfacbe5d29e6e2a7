export * from '../../../methods/account/login.ts';
