export const handler = async () => 'esm package';
